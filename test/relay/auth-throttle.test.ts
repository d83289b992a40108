// Brute force protection and client addresses behind a load balancer, through the real relay.
// @needs kafka processes
// @limit 30s
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';

// Failed AUTHs count across every relay on the broker: topics of its own keep other tests' failures from 127.0.0.1 out.
const prefix = `throttle-${randomBytes(4).toString('hex')}`;
const key = newApiKey();
const account = accountFolder(key);
let relay: RelayProcess;
let kafka: KafkaReader;

before(async () => {
  kafka = await KafkaReader.start(testKafka(), `${prefix}.submissions`);
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(),
    args: ['--allow-auth-without-tls', '--topic-prefix', prefix, '--auth-slow-after', '2', '--auth-block-after', '4', '--auth-window', '600', '--proxy-protocol', '127.0.0.1'] });
});
after(async () => {
  await Promise.all([relay?.stop(), kafka?.stop()]);
});

/** A connection that announces `client` in a PROXY protocol v1 header, as a load balancer does. */
async function connectAs(client: string): Promise<RawSmtp> {
  const smtp = await RawSmtp.connect(relay.ports.submission);
  await smtp.write(`PROXY TCP4 ${client} 127.0.0.1 40000 587\r\n`);
  return smtp;
}

test('failed AUTHs from one address are slowed, then refused with 421 4.7.0, and counted', async () => {
  const attacker = '198.51.100.7';
  const timings: number[] = [];
  for (let i = 0; i < 4; i++) {
    const smtp = await connectAs(attacker);
    assert.match((await smtp.reply()) ?? '', /^220 /);
    const started = Date.now();
    assert.equal(await smtp.login(newApiKey()), '535 5.7.8 Sorry.');
    timings.push(Date.now() - started);
    smtp.close();
  }
  assert.ok(timings[0]! < 900 && timings[1]! < 900, `the first failures are not slowed: ${timings}`);
  assert.ok(timings[2]! >= 900 && timings[3]! >= 1900, `later failures are slowed: ${timings}`);

  const refused = await connectAs(attacker);
  assert.match((await refused.reply()) ?? '', /^421 4\.7\.0 Too many failed authentications from 198\.51\.100\.7; try again in \d+ seconds$/);
  refused.close();
  assert.equal(await relay.metric('mtrelay_relay_auth_total', { result: 'unknown_key' }), 4);

  const other = await connectAs('198.51.100.8');
  await other.reply();
  assert.match((await other.login(key)) ?? '', /^235 /, 'other addresses are not affected');
  other.close();
});

/** A PROXY protocol v2 header (binary, as AWS NLB sends it) for a TCP connection from `client`. */
function proxyV2(client: string, family: 'TCP4' | 'TCP6'): Buffer {
  const signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const address = (ip: string) => (family === 'TCP4' ? Buffer.from(ip.split('.').map(Number))
    : Buffer.concat(ip.split(':').map((group) => { const b = Buffer.alloc(2); b.writeUInt16BE(parseInt(group, 16)); return b; })));
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(40000, 0);
  ports.writeUInt16BE(587, 2);
  const body = Buffer.concat([address(client), address(family === 'TCP4' ? '127.0.0.1' : '0:0:0:0:0:0:0:1'), ports,
    Buffer.from([0x04, 0x00, 0x02, 0x41, 0x42])]); // and a TLV, which is skipped
  const length = Buffer.alloc(2);
  length.writeUInt16BE(body.length);
  return Buffer.concat([signature, Buffer.from([0x21, family === 'TCP4' ? 0x11 : 0x21]), length, body]);
}

async function submitThrough(smtp: RawSmtp): Promise<string> {
  assert.match((await smtp.reply()) ?? '', /^220 /);
  await smtp.login(key);
  await smtp.command('MAIL FROM:<sender@example.com>');
  await smtp.command('RCPT TO:<x@recipient.test>');
  await smtp.command('DATA');
  await smtp.write('From: sender@example.com\r\nSubject: proxied\r\n\r\nbody\r\n.\r\n');
  const id = /OK (\d+)$/.exec((await smtp.reply()) ?? '')?.[1];
  assert.ok(id);
  smtp.close();
  return id;
}

test('PROXY protocol v2 (IPv4 and IPv6, as AWS NLB sends it): the client address is the one in the header', async () => {
  for (const [client, family, expected] of [['198.51.100.23', 'TCP4', '198.51.100.23'], ['2001:db8:0:0:0:0:0:7', 'TCP6', '2001:db8::7']] as const) {
    const smtp = await RawSmtp.connect(relay.ports.submission);
    await smtp.write(proxyV2(client, family));
    const id = await submitThrough(smtp);
    assert.equal(kafka.header(await kafka.waitFor(id), 'mtrelay-client-address'), expected);
    assert.equal((await relay.waitForLog((l) => l.msg === 'transaction' && l.transmissionId === id)).client, expected);
  }
  // A v2 LOCAL header (the load balancer's own health check) keeps the connection's address.
  const local = await RawSmtp.connect(relay.ports.submission);
  await local.write(Buffer.concat([proxyV2('198.51.100.23', 'TCP4').subarray(0, 12), Buffer.from([0x20, 0x00, 0x00, 0x00])]));
  assert.match((await local.reply()) ?? '', /^220 /);
  local.close();
});

test('with the PROXY protocol the client address of the load balancer\'s header is logged and stored', async () => {
  const id = await submitThrough(await connectAs('203.0.113.9'));
  assert.equal(kafka.header(await kafka.waitFor(id), 'mtrelay-client-address'), '203.0.113.9');
  const line = await relay.waitForLog((l) => l.msg === 'transaction' && l.transmissionId === id);
  assert.equal(line.client, '203.0.113.9');
});
