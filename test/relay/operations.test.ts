// What an operator sees: /healthz, /readyz, /metrics, one JSON log line per transaction with
// no secrets, a clear refusal to start on a broken folder, and a graceful drain on SIGTERM.
// @needs kafka processes swaks openssl
// @limit 45s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';
import { submitArgs, swaks } from '../helpers/swaks.ts';
import { createTestCa } from '../helpers/tls.ts';
import { freePort } from '../kafka/broker.ts';

const key = newApiKey();
const account = accountFolder(key);
const ca = createTestCa();
const cert = ca.issue('relay', ['localhost', '127.0.0.1']);
let kafka: KafkaReader;

before(async () => {
  kafka = await KafkaReader.start(testKafka());
});
after(async () => {
  await kafka?.stop();
});

test('health, readiness, metrics and one log line per transaction without secrets', async () => {
  const relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), tls: cert });
  try {
    assert.deepEqual(await relay.http('/healthz'), { status: 200, body: 'ok\n' });
    assert.deepEqual(await relay.http('/readyz'), { status: 200, body: 'ready\n' });
    const ok = await swaks(submitArgs({ port: relay.ports.submission, key, ca: ca.caCert }));
    const id = /OK (\d+)$/.exec(ok.dataReply ?? '')?.[1];
    assert.ok(id, ok.output);
    await swaks(submitArgs({ port: relay.ports.smtps, key: 'wrong-key-wrong-key-wrong', tls: 'implicit' }));
    await swaks(submitArgs({ port: relay.ports.submission, key, from: 'x@elsewhere.test' }));

    assert.equal(await relay.metric('mtrelay_relay_connections_total', { listener: 'submission' }), 2);
    assert.equal(await relay.metric('mtrelay_relay_tls_handshakes_total', { listener: 'smtps', protocol: 'TLSv1.3' }), 1);
    assert.equal(await relay.metric('mtrelay_relay_auth_total', { result: 'ok' }), 2);
    assert.equal(await relay.metric('mtrelay_relay_auth_total', { result: 'unknown_key' }), 1);
    assert.equal(await relay.metric('mtrelay_relay_replies_total', { reply: 'ACCEPTED', code: '250' }), 1);
    assert.equal(await relay.metric('mtrelay_relay_replies_total', { reply: 'UNCONFIGURED_SENDING_DOMAIN', code: '550' }), 1);
    assert.ok(await relay.metric('mtrelay_relay_received_bytes_total') > 0);
    assert.equal(await relay.metric('mtrelay_relay_kafka_produce_seconds_count', { result: 'ok' }), 1);
    assert.equal(await relay.metric('mtrelay_config_generation'), 1);
    assert.equal(await relay.metric('mtrelay_relay_kafka_connected'), 1);

    const line = await relay.waitForLog((l) => l.msg === 'transaction' && l.transmissionId === id);
    assert.equal(line.reply, `250 2.0.0 OK ${id}`);
    assert.equal(line.keyId, 'acme/app');
    assert.equal(line.tls, 'TLSv1.3');
    const refused = await relay.waitForLog((l) => l.msg === 'transaction' && String(l.reply).startsWith('550'));
    assert.equal(refused.reply, '550 5.7.1 Unconfigured Sending Domain <elsewhere.test>');
    const everything = JSON.stringify(relay.logs) + relay.stderr.join('\n');
    assert.ok(!everything.includes(key), 'the API key never appears in the logs');
    assert.ok(!everything.includes('wrong-key-wrong-key-wrong'), 'nor does a wrong one');
  } finally {
    await relay.stop();
  }
});

test('a relay whose resources folder is broken at start refuses to start and says why', async () => {
  const broken = tempDir('broken');
  const folder = accountFolder(key, broken);
  folder.write('domain.yaml', 'apiVersion: mtrelay.dev/v1alpha1\nkind: SendingDomain\nmetadata: {name: bad, namespace: acme}\nspec: {domain: "Not A Domain"}\n');
  const relay = new RelayProcess({ resources: broken, kafka: testKafka() });
  assert.equal(await relay.exited, 1);
  assert.match(relay.stderr.join('\n'), /domain\.yaml: SendingDomain acme\/bad: spec\.domain: must match pattern/);
});

test('the SMTP port opens only once a message can be stored: the very first client gets 250, never 451', async () => {
  const port = await freePort();
  const relay = new RelayProcess({ resources: account.dir, kafka: testKafka(), args: ['--port', String(port), '--allow-auth-without-tls'] });
  try {
    // Knock every few milliseconds from the moment the process starts; the first session that gets in sends at once.
    const deadline = Date.now() + 30_000;
    let client: RawSmtp | undefined;
    while (!client) {
      assert.ok(Date.now() < deadline, 'the relay never listened');
      client = await RawSmtp.connect(port).catch(() => undefined);
      if (!client) await new Promise((r) => setTimeout(r, 5));
    }
    // The whole transaction pipelined (RFC 2920), so it reaches DATA within milliseconds of the port opening.
    await client.write(`EHLO client.test\r\nAUTH PLAIN ${Buffer.from(`\0smtp_mt_injection\0${key}`).toString('base64')}\r\n`
      + 'MAIL FROM:<sender@example.com>\r\nRCPT TO:<first@recipient.test>\r\nDATA\r\n');
    const replies = [];
    for (let i = 0; i < 6; i++) replies.push((await client.reply()) ?? '');
    assert.deepEqual(replies.map((r) => r.slice(0, 3)), ['220', '250', '235', '250', '250', '354'], replies.join(' | '));
    assert.match((await client.command('From: sender@example.com\r\nSubject: first\r\n\r\nthe first message\r\n.')) ?? '', /^250 2\.0\.0 OK \d+$/);
    client.close();
  } finally {
    await relay.stop();
  }
});

test('every flag can come from an MTRELAY_<FLAG> environment variable', async () => {
  const relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(),
    env: { MTRELAY_MAX_SIZE: '12345', MTRELAY_HOSTNAME: 'smtp.env.test' } });
  try {
    const client = await RawSmtp.connect(relay.ports.submission);
    assert.match((await client.reply()) ?? '', /^220 smtp\.env\.test /);
    assert.match((await client.command('EHLO client.test')) ?? '', /^250 SIZE 12345$/m);
    client.close();
  } finally {
    await relay.stop();
  }
});

test('SIGTERM drains: no new connections, the transaction in DATA is finished and answered, then exit 0', async () => {
  const relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--allow-auth-without-tls'] });
  const busy = await RawSmtp.connect(relay.ports.submission);
  await busy.reply();
  await busy.login(key);
  await busy.command('MAIL FROM:<sender@example.com>');
  await busy.command('RCPT TO:<x@recipient.test>');
  assert.match((await busy.command('DATA')) ?? '', /^354 /);
  await busy.write('From: sender@example.com\r\nSubject: drain\r\n\r\nfirst half, ');

  relay.child.kill('SIGTERM');
  await relay.waitForLog((l) => String(l.msg).startsWith('draining'));
  await assert.rejects(RawSmtp.connect(relay.ports.submission), /ECONNREFUSED/, 'no new connections while draining');
  assert.equal((await relay.http('/readyz')).status, 503);

  await busy.write('second half\r\n.\r\n');
  const id = /^250 2\.0\.0 OK (\d+)$/.exec((await busy.reply()) ?? '')?.[1];
  assert.ok(id, 'the message in DATA is accepted');
  assert.equal(await busy.command('MAIL FROM:<sender@example.com>'), '421 4.4.2 Server shutting down');
  assert.equal(await relay.exited, 0);
  const record = await kafka.waitFor(id);
  assert.match(record.value.toString(), /first half, second half/);
});
