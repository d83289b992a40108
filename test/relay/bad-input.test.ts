// Input no well-behaved client sends: each gets a specific reply, nothing accepted is lost,
// and memory stays bounded by the SIZE limit whatever the client streams.
// @needs kafka processes
// @limit 150s
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';

const key = newApiKey();
const account = accountFolder(key);
let relay: RelayProcess;
let kafka: KafkaReader;

before(async () => {
  kafka = await KafkaReader.start(testKafka());
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(),
    args: ['--allow-auth-without-tls', '--max-size', String(1024 * 1024), '--max-header-size', '8192', '--command-timeout', '60'] });
});
after(async () => {
  await Promise.all([relay?.stop(), kafka?.stop()]);
});

/** A logged-in session with MAIL FROM, one RCPT and DATA already answered 354. */
async function inData(): Promise<RawSmtp> {
  const client = await RawSmtp.connect(relay.ports.submission);
  await client.reply();
  assert.match((await client.login(key)) ?? '', /^235 /);
  assert.match((await client.command('MAIL FROM:<sender@example.com>')) ?? '', /^250 /);
  assert.match((await client.command('RCPT TO:<x@recipient.test>')) ?? '', /^250 /);
  assert.match((await client.command('DATA')) ?? '', /^354 /);
  return client;
}

const transmissionOf = (reply: string | undefined) => /^250 2\.0\.0 OK (\d+)$/.exec(reply ?? '')?.[1];

describe('commands', () => {
  test('unknown and malformed commands get 5xx replies and the session goes on', async () => {
    const client = await RawSmtp.connect(relay.ports.submission);
    assert.match((await client.reply()) ?? '', /^220 /);
    assert.equal(await client.command('FOO bar'), '500 5.5.2 Error: command not recognized');
    assert.equal(await client.command('MAIL FROM:<a@b.test>'), '503 5.5.1 Error: send HELO/EHLO first');
    assert.match((await client.command('EHLO client.test')) ?? '', /^250-/);
    assert.match((await client.command('MAIL FROM:<a@b.test>')) ?? '', /^530 5\.7\.0 Authentication required/);
    assert.match((await client.command('RCPT TO:<a@b.test>')) ?? '', /^(503|530) /);
    assert.equal(await client.command('NOOP'), '250 2.0.0 OK');
    client.close();
  });

  test('never an open relay: nmap smtp-open-relay\'s patterns without AUTH are refused every time', async () => {
    // The senders and recipients nmap's script tries (% hack, quoted local parts, source routes,
    // bang paths, user@domain@[ip], IP literals), each in a session of its own, as HELO and EHLO.
    const ip = '[127.0.0.1]';
    const senders = ['<>', `<antispam@${ip}>`, '<antispam@relay.test>', '<relaytest@nmap.scanme.org>'];
    const recipients = ['<relaytest@nmap.scanme.org>', `<relaytest%nmap.scanme.org@${ip}>`, '<relaytest%nmap.scanme.org@relay.test>',
      '<"relaytest@nmap.scanme.org">', '<"relaytest%nmap.scanme.org">', `<relaytest@nmap.scanme.org@${ip}>`, `<"relaytest@nmap.scanme.org"@${ip}>`,
      '<relaytest@nmap.scanme.org@relay.test>', `<@${ip}:relaytest@nmap.scanme.org>`, '<@relay.test:relaytest@nmap.scanme.org>',
      '<nmap.scanme.org!relaytest>', `<nmap.scanme.org!relaytest@${ip}>`, '<nmap.scanme.org!relaytest@relay.test>', `<relaytest@${ip}>`];
    let tried = 0;
    for (const [n, from] of senders.entries()) {
      for (const to of recipients) {
        const client = await RawSmtp.connect(relay.ports.submission);
        await client.reply();
        assert.match((await client.command(n % 2 ? 'HELO nmap.scanme.org' : 'EHLO nmap.scanme.org')) ?? '', /^250[ -]/);
        const mail = await client.command(`MAIL FROM:${from}`);
        const rcpt = await client.command(`RCPT TO:${to}`);
        const data = await client.command('DATA');
        assert.match(mail ?? '', /^530 5\.7\.0 Authentication required/, `MAIL FROM:${from}`);
        for (const reply of [rcpt, data]) assert.match(reply ?? '', /^(503|530) /, `MAIL FROM:${from} RCPT TO:${to}: ${reply}`);
        client.close();
        tried++;
      }
    }
    assert.equal(tried, senders.length * recipients.length);
  });

  test('a command ended by a bare LF is still understood', async () => {
    const client = await RawSmtp.connect(relay.ports.submission);
    await client.reply();
    await client.write('NOOP\n');
    assert.equal(await client.reply(), '250 2.0.0 OK');
    client.close();
  });

  test('a NUL byte in a command is refused', async () => {
    const client = await RawSmtp.connect(relay.ports.submission);
    await client.reply();
    assert.match((await client.command('EHLO bad\0host')) ?? '', /^501 /);
    client.close();
  });

  test('an overlong command line: 421 and the connection is closed', async () => {
    const client = await RawSmtp.connect(relay.ports.submission);
    await client.reply();
    assert.equal(await client.command(`NOOP ${'x'.repeat(20_000)}`), '421 4.4.2 Error: Command line too long');
    assert.equal(await client.reply(), undefined);
    assert.ok(client.closed);
  });

  test('invalid base64 in AUTH PLAIN and AUTH LOGIN: 501 5.5.4', async () => {
    const client = await RawSmtp.connect(relay.ports.submission);
    await client.reply();
    await client.command('EHLO client.test');
    assert.equal(await client.command('AUTH PLAIN !!!not-base64***'), '501 5.5.4 Error: invalid userdata');
    assert.match((await client.command('AUTH LOGIN')) ?? '', /^334 /);
    assert.equal(await client.command('%%%%'), '501 5.5.4 Error: missing username');
    assert.match((await client.login(key)) ?? '', /^235 /, 'a valid AUTH still works afterwards');
    client.close();
  });

  test('pipelined commands are answered in order', async () => {
    const client = await RawSmtp.connect(relay.ports.submission);
    await client.reply();
    await client.write(`EHLO client.test\r\nAUTH PLAIN ${Buffer.from(`\0smtp_mt_injection\0${key}`).toString('base64')}\r\n` +
      'MAIL FROM:<sender@example.com>\r\nRCPT TO:<a@recipient.test>\r\nRCPT TO:<b@recipient.test>\r\nDATA\r\n');
    assert.match((await client.reply()) ?? '', /^250-/);
    assert.match((await client.reply()) ?? '', /^235 /);
    assert.match((await client.reply()) ?? '', /^250 2\.1\.0/);
    assert.match((await client.reply()) ?? '', /^250 2\.1\.5/);
    assert.match((await client.reply()) ?? '', /^250 2\.1\.5/);
    assert.match((await client.reply()) ?? '', /^354 /);
    await client.write('From: sender@example.com\r\nSubject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<sender@example.com>\r\nRCPT TO:<c@recipient.test>\r\nDATA\r\n');
    const id = transmissionOf(await client.reply());
    assert.ok(id);
    assert.match((await client.reply()) ?? '', /^250 /);
    assert.match((await client.reply()) ?? '', /^250 /);
    assert.match((await client.reply()) ?? '', /^354 /);
    await client.write('From: sender@example.com\r\nSubject: second\r\n\r\nbody\r\n.\r\nQUIT\r\n');
    assert.ok(transmissionOf(await client.reply()));
    assert.match((await client.reply()) ?? '', /^221 /);
    const record = await kafka.waitFor(id);
    assert.deepEqual(JSON.parse(kafka.header(record, 'mtrelay-rcpt-to')!), ['a@recipient.test', 'b@recipient.test']);
  });
});

describe('message data', () => {
  test('bare LF line endings are stored as CRLF, and a bare-LF dot does not end the data', async () => {
    const client = await inData();
    await client.write('From: sender@example.com\nSubject: bare\n\nline one\n.\nMAIL FROM:<smuggled@example.com>\nline three\r\n.\r\n');
    const id = transmissionOf(await client.reply());
    assert.ok(id, 'one message, one reply');
    const record = await kafka.waitFor(id);
    assert.equal(record.value.toString(), 'From: sender@example.com\r\nSubject: bare\r\n\r\nline one\r\n.\r\nMAIL FROM:<smuggled@example.com>\r\nline three\r\n');
    assert.equal(await client.command('NOOP'), '250 2.0.0 OK', 'no smuggled command was run');
    client.close();
  });

  test('a NUL byte in the message: 550 5.6.0', async () => {
    const client = await inData();
    await client.write('From: sender@example.com\r\nSubject: nul\r\n\r\nbin\0ary\r\n.\r\n');
    assert.equal(await client.reply(), '550 5.6.0 Message contains a NUL byte (RFC 5322 2.1)');
    client.close();
  });

  test('a header line over 998 characters: 550 5.6.0 naming the line', async () => {
    const client = await inData();
    await client.write(`From: sender@example.com\r\nSubject: ${'s'.repeat(1000)}\r\n\r\nbody\r\n.\r\n`);
    assert.equal(await client.reply(), '550 5.6.0 Header line 2 is longer than 998 characters (RFC 5322 2.1.1)');
    client.close();
  });

  test('a header block over --max-header-size: 552 5.3.4', async () => {
    const client = await inData();
    const many = Array.from({ length: 200 }, (_, i) => `X-Filler-${i}: ${'f'.repeat(60)}`).join('\r\n');
    await client.write(`From: sender@example.com\r\n${many}\r\n\r\nbody\r\n.\r\n`);
    assert.equal(await client.reply(), '552 5.3.4 Message header block exceeds 8192 bytes');
    client.close();
  });

  test('a message with no From header, or two: 550 5.6.0', async () => {
    let client = await inData();
    await client.write('Subject: anonymous\r\n\r\nbody\r\n.\r\n');
    assert.equal(await client.reply(), '550 5.6.0 Message has no From header (RFC 5322 3.6)');
    client.close();
    client = await inData();
    await client.write('From: sender@example.com\r\nFrom: other@example.com\r\n\r\nbody\r\n.\r\n');
    assert.equal(await client.reply(), '550 5.6.0 Message has more than one From header (RFC 5322 3.6)');
    client.close();
  });

  test('a 1 GB DATA stream is refused with 552 5.3.4 and the relay\'s memory stays bounded', async () => {
    const pid = relay.child.pid!;
    const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    const before = rssKb();
    const client = await inData();
    const chunk = Buffer.from(`${'y'.repeat(1022)}\r\n`.repeat(1024)); // 1 MiB of 1 KiB lines
    await client.write('From: sender@example.com\r\nSubject: huge\r\n\r\n');
    let peak = before;
    for (let i = 0; i < 1024; i++) {
      await client.write(chunk);
      if (i % 64 === 0) peak = Math.max(peak, rssKb());
    }
    await client.write('.\r\n');
    assert.equal(await client.reply(60_000), '552 5.3.4 Message size exceeds fixed maximum message size of 1048576 bytes');
    peak = Math.max(peak, rssKb());
    client.close();
    // 1 GiB went through; the relay kept at most its 1 MiB limit plus buffers.
    assert.ok(peak - before < 128 * 1024, `RSS grew by ${Math.round((peak - before) / 1024)} MiB while streaming 1 GiB`);
  });

  test('a client that stalls mid-DATA is disconnected after the command timeout; others are served meanwhile', async () => {
    const stalled = await inData();
    await stalled.write('From: sender@example.com\r\nSubject: stall\r\n\r\nhalf a mess');
    const started = Date.now();
    const other = await inData();
    await other.write('From: sender@example.com\r\nSubject: meanwhile\r\n\r\nbody\r\n.\r\n');
    assert.ok(transmissionOf(await other.reply()), 'another client is served while one stalls');
    other.close();
    const reply = await stalled.reply(90_000);
    const waited = Date.now() - started;
    assert.match(reply ?? '', /^421 4\.4\.2 .*[Tt]imeout/);
    assert.ok(waited >= 59_000, `timed out after ${waited} ms, the minimum is 60 s`);
    assert.equal(await stalled.reply(5000), undefined, 'the connection is closed');
  });
});
