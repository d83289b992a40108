// Real clients (swaks, nodemailer) against a relay backed by the real Kafka broker: every
// reply of the submission service, on each port, with and without TLS, and the stored record.
// @needs kafka processes swaks openssl
// @limit 45s
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey, sendingDomainYaml, signedDomainYaml, tempDir } from '../helpers/resources.ts';
import { submitArgs, swaks } from '../helpers/swaks.ts';
import { createTestCa } from '../helpers/tls.ts';

const key = newApiKey();
const readOnlyKey = newApiKey();
const ca = createTestCa();
const serverCert = ca.issue('relay', ['localhost', '127.0.0.1']);
const account = accountFolder(key);
account.write('read-only.yaml', apiKeyYaml('acme', 'reader', readOnlyKey, { permissions: ['events/read'] }));
let relay: RelayProcess;
let plainRelay: RelayProcess;
let kafka: KafkaReader;

/** A message exactly as the client will send it (CRLF line endings, no dot-stuffing needed). */
function message(headers: string[], body = 'Hello from the submission test.'): string {
  return [...headers, '', body, ''].join('\r\n');
}

function dataFile(content: string): string {
  const file = path.join(tempDir('data'), 'message.eml');
  writeFileSync(file, content);
  return file;
}

const transmissionOf = (reply: string | undefined) => /^250 2\.0\.0 OK (\d+)$/.exec(reply ?? '')?.[1];

before(async () => {
  kafka = await KafkaReader.start(testKafka());
  // The installer's sandbox domain: a SendingDomain of its own namespace, with its key.
  account.write('sandbox.yaml', signedDomainYaml('mtrelay-system', 'sandbox', 'sandbox.mailtarget.co'));
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), tls: serverCert, args: ['--sandbox-domain', 'sandbox.mailtarget.co'] });
  plainRelay = await RelayProcess.start({
    resources: account.dir, kafka: testKafka(),
    args: ['--allow-auth-without-tls', '--max-size', '20000', '--max-recipients', '3', '--sandbox-domain', 'sandbox.mailtarget.co', '--sandbox-quota', '2',
      '--auth-slow-after', '100', '--auth-block-after', '200'],
  });
});

after(async () => {
  await Promise.all([relay?.stop(), plainRelay?.stop(), kafka?.stop()]);
});

describe('accepted submissions', () => {
  for (const [listener, tls, auth] of [['submission', 'starttls', 'LOGIN'], ['alt', 'starttls', 'PLAIN'], ['smtps', 'implicit', 'LOGIN']] as const) {
    test(`swaks on the ${listener} port (${tls}, AUTH ${auth}): 250 only after Kafka has the exact bytes`, async () => {
      const sent = message([
        'From: Sender <sender@example.com>', 'To: someone@recipient.test', `Subject: ${listener} test`,
        `Message-ID: <${listener}.${Date.now()}@example.com>`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8',
      ], `Line one\r\n.a line that starts with a dot\r\nLast line`);
      const result = await swaks([...submitArgs({ port: relay.ports[listener], key, tls, auth, ca: ca.caCert }), '--data', dataFile(sent)]);
      const id = transmissionOf(result.dataReply);
      assert.ok(id, `expected 250 2.0.0 OK <id>, got ${result.dataReply}\n${result.output}`);
      const record = await kafka.waitFor(id);
      // swaks dot-stuffs the line that starts with a dot (the relay must undo exactly that)
      // and ends the data with one more CRLF before the final dot.
      assert.equal(record.value.toString('latin1'), `${sent}\r\n`);
      assert.equal(kafka.header(record, 'mtrelay-schema'), '1');
      assert.equal(kafka.header(record, 'mtrelay-namespace'), 'acme');
      assert.equal(kafka.header(record, 'mtrelay-api-key-id'), 'acme/app');
      assert.equal(kafka.header(record, 'mtrelay-mail-from'), 'sender@example.com');
      assert.deepEqual(JSON.parse(kafka.header(record, 'mtrelay-rcpt-to')!), ['someone@recipient.test']);
      assert.equal(kafka.header(record, 'mtrelay-sending-domain'), 'example.com');
      assert.match(kafka.header(record, 'mtrelay-tls')!, /^TLSv1\.[23]$/);
      assert.equal(record.key, id);
    });
  }

  test('nodemailer with STARTTLS required and the test CA: 250 2.0.0 OK <id>, envelope and attributes stored', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1', port: relay.ports.submission, secure: false, requireTLS: true,
      tls: { ca: [readFileSync(ca.caCert)], servername: 'localhost' },
      auth: { user: 'smtp_mt_injection', pass: key },
    });
    const info = await transport.sendMail({
      from: 'News <news@example.com>', to: ['a@recipient.test', 'b@recipient.test'], subject: 'nodemailer',
      text: 'hello', headers: { 'X-MT-ATTR': JSON.stringify({ optionsAttributes: { openTracking: true }, cc: ['c@recipient.test'], bcc: [{ email: 'd@recipient.test', name: 'D' }], tags: ['welcome'] }) },
    });
    transport.close();
    const id = transmissionOf(info.response);
    assert.ok(id, info.response);
    const record = await kafka.waitFor(id);
    assert.deepEqual(JSON.parse(kafka.header(record, 'mtrelay-rcpt-to')!), ['a@recipient.test', 'b@recipient.test']);
    assert.deepEqual(JSON.parse(kafka.header(record, 'mtrelay-attributes')!), {
      openTracking: true, cc: [{ email: 'c@recipient.test' }], bcc: [{ email: 'd@recipient.test', name: 'D' }], archive: [], tags: ['welcome'], metadata: {},
    });
    assert.match(record.value.toString(), /^X-MT-ATTR: /im, 'the relay stores the header; the deliverer removes it');
  });

  test('the sandbox domain is a sending domain of every key', async () => {
    const result = await swaks([...submitArgs({ port: relay.ports.submission, key, from: 'test@sandbox.mailtarget.co' })]);
    assert.ok(transmissionOf(result.dataReply), result.output);
  });

  test('AUTH without TLS works when the relay allows it', async () => {
    const result = await swaks(submitArgs({ port: plainRelay.ports.submission, key, tls: 'none', auth: 'PLAIN' }));
    assert.ok(transmissionOf(result.dataReply), result.output);
  });

  test('a folded X-MT-ATTR header is unfolded before parsing', async () => {
    const sent = message(['From: sender@example.com', 'To: x@recipient.test', 'Subject: folded',
      'X-MT-ATTR: { "optionsAttributes" : { "openTracking" : true,', '\t"clickTracking" : true },', '  "archive": ["arch@recipient.test"] }']);
    const result = await swaks([...submitArgs({ port: relay.ports.submission, key }), '--data', dataFile(sent)]);
    const id = transmissionOf(result.dataReply);
    assert.ok(id, result.output);
    const attrs = JSON.parse(kafka.header(await kafka.waitFor(id), 'mtrelay-attributes')!);
    assert.equal(attrs.clickTracking, true);
    assert.deepEqual(attrs.archive, [{ email: 'arch@recipient.test' }]);
  });
});

describe('refused submissions', () => {
  test('a wrong API key: 535 5.7.8 Sorry. and swaks reports that no authentication type succeeded', async () => {
    const result = await swaks(submitArgs({ port: relay.ports.submission, key: newApiKey() }));
    assert.ok(result.replies.includes('535 5.7.8 Sorry.'), result.output);
    assert.match(result.output, /\*\*\* No authentication type succeeded/);
  });

  test('the wrong user name, and a key without smtp/send: 535 5.7.8 Sorry.', async () => {
    const wrongUser = await swaks(submitArgs({ port: relay.ports.submission, key }).map((a) => (a === 'smtp_mt_injection' ? 'someone' : a)));
    assert.ok(wrongUser.replies.includes('535 5.7.8 Sorry.'), wrongUser.output);
    const noPermission = await swaks(submitArgs({ port: relay.ports.submission, key: readOnlyKey, auth: 'PLAIN' }));
    assert.ok(noPermission.replies.includes('535 5.7.8 Sorry.'), noPermission.output);
  });

  test('AUTH before STARTTLS is refused by default', async () => {
    const result = await swaks(submitArgs({ port: relay.ports.submission, key, tls: 'none' }));
    assert.ok(result.replies.some((r) => /^538 5\.7\.0 /.test(r)), result.output);
    assert.equal(result.dataReply, undefined);
  });

  test('MAIL FROM without AUTH: 530 5.7.0 Authentication required (never an open relay)', async () => {
    const result = await swaks(['--server', `127.0.0.1:${relay.ports.submission}`, '--from', 'sender@example.com', '--to', 'x@recipient.test', '-tls']);
    assert.ok(result.replies.includes('530 5.7.0 Authentication required'), result.output);
  });

  test('a From at a domain the namespace does not own: 550 5.7.1 Unconfigured Sending Domain <domain>', async () => {
    const result = await swaks(submitArgs({ port: relay.ports.submission, key, from: 'admin@admin.example.net' }));
    assert.equal(result.dataReply, '550 5.7.1 Unconfigured Sending Domain <admin.example.net>');
  });

  test('X-MT-ATTR that is not JSON: 550 5.6.0 JSON parsing error in X-MT-ATTR: <detail>', async () => {
    const result = await swaks([...submitArgs({ port: relay.ports.submission, key }), '--add-header', 'X-MT-ATTR: { "cc": [ }']);
    assert.match(result.dataReply ?? '', /^550 5\.6\.0 JSON parsing error in X-MT-ATTR: .*JSON/);
  });

  test('X-MT-ATTR that breaks the schema: 550 5.6.0 naming the field', async () => {
    const wrongType = await swaks([...submitArgs({ port: relay.ports.submission, key }), '--add-header', 'X-MT-ATTR: {"optionsAttributes":{"openTracking":"yes"}}']);
    assert.equal(wrongType.dataReply, '550 5.6.0 X-MT-ATTR optionsAttributes.openTracking: must be boolean');
    const unknown = await swaks([...submitArgs({ port: relay.ports.submission, key }), '--add-header', 'X-MT-ATTR: {"ccc":["a@b.test"]}']);
    assert.equal(unknown.dataReply, '550 5.6.0 X-MT-ATTR ccc: is not a known field');
    const badAddress = await swaks([...submitArgs({ port: relay.ports.submission, key }), '--add-header', 'X-MT-ATTR: {"bcc":["ok@b.test","not-an-address"]}']);
    assert.match(badAddress.dataReply ?? '', /^550 5\.6\.0 X-MT-ATTR bcc\[1\]: /);
  });

  test('more than 1000 cc + bcc + archive addresses: 550 5.6.0', async () => {
    const addresses = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ` "${prefix}${i}@recipient.test"`).join(',\r\n');
    const sent = message(['From: sender@example.com', 'To: x@recipient.test',
      `X-MT-ATTR: {"cc": [\r\n${addresses('c', 500)} ],\r\n "bcc": [\r\n${addresses('b', 501)} ] }`]);
    const result = await swaks([...submitArgs({ port: relay.ports.submission, key }), '--data', dataFile(sent)]);
    assert.equal(result.dataReply, '550 5.6.0 X-MT-ATTR cc, bcc, archive: 1001 addresses exceed the limit of 1000');
  });

  test('a message over SIZE: 552 5.3.4 once the stream ends, and nothing is stored', async () => {
    const line = `${'x'.repeat(890)}${randomUUID()}`;
    const big = message(['From: sender@example.com', 'To: x@recipient.test'], line.concat('\r\n').repeat(30));
    const streamed = await swaks([...submitArgs({ port: plainRelay.ports.submission, key, tls: 'none' }), '--data', dataFile(big)]);
    assert.equal(streamed.dataReply, '552 5.3.4 Message size exceeds fixed maximum message size of 20000 bytes');
    const small = await swaks(submitArgs({ port: plainRelay.ports.submission, key, tls: 'none' }));
    const id = transmissionOf(small.dataReply);
    assert.ok(id, 'a small message still passes on the same relay');
    await kafka.waitFor(id);
    // Records of earlier tests may still be arriving, so the check is by content, not by count.
    assert.ok(!kafka.records.some((r) => r.value.includes(line)), 'the refused message is not in Kafka');
  });

  test('the sandbox domain has a quota per account: 550 5.7.1 once it is used up', async () => {
    // An account of its own: the quota is counted across relays, and the other relay sent acme's sandbox mail above.
    const trialKey = newApiKey();
    account.write('trial.yaml', apiKeyYaml('trial', 'app', trialKey));
    const sandbox = () => swaks(submitArgs({ port: plainRelay.ports.submission, key: trialKey, tls: 'none', from: 'try@sandbox.mailtarget.co' }));
    let first = (await sandbox()).dataReply;
    for (const deadline = Date.now() + 5000; !transmissionOf(first) && Date.now() < deadline;) first = (await sandbox()).dataReply; // until the relay has read the file
    assert.ok(transmissionOf(first), first);
    assert.ok(transmissionOf((await sandbox()).dataReply));
    assert.equal((await sandbox()).dataReply,
      '550 5.7.1 Sandbox domain limit of 2 messages per 24 hours reached for account trial; create a SendingDomain to send more');
    account.remove('trial.yaml');
    const own = await swaks(submitArgs({ port: plainRelay.ports.submission, key, tls: 'none' }));
    assert.ok(transmissionOf(own.dataReply), 'the account\'s own domain is not limited');
  });

  test('a SendingDomain without its DKIM key is not sent from: 451 4.7.5 naming it, until the key exists', async () => {
    account.write('keyless.yaml', sendingDomainYaml('acme', 'keyless', 'keyless.example'));
    const send = () => swaks(submitArgs({ port: plainRelay.ports.submission, key, tls: 'none', from: 'news@keyless.example' }));
    const expected = '451 4.7.5 Sending domain keyless.example has no DKIM key yet (SendingDomain acme/keyless); mtrelay sends only signed mail';
    const deadline = Date.now() + 5000;
    let reply = (await send()).dataReply;
    while (reply !== expected && Date.now() < deadline) reply = (await send()).dataReply; // until the relay has read the file
    assert.equal(reply, expected);
    await plainRelay.waitForLog((l) => l.level === 40 && /SendingDomain has no DKIM key: mail from keyless\.example is refused until Secret acme\/keyless-dkim holds its privateKey/.test(String(l.msg)));
    account.write('keyless.yaml', signedDomainYaml('acme', 'keyless', 'keyless.example'));
    for (let signed = (await send()).dataReply; !transmissionOf(signed); signed = (await send()).dataReply) {
      assert.ok(Date.now() < deadline + 5000, `still ${signed}`);
    }
    account.remove('keyless.yaml');
  });

  test('the sandbox: off unless configured; configured, it needs a SendingDomain with a key for it', async () => {
    const off = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--allow-auth-without-tls'] });
    try {
      const result = await swaks(submitArgs({ port: off.ports.submission, key, tls: 'none', from: 'try@sandbox.mailtarget.co' }));
      assert.equal(result.dataReply, '550 5.7.1 Unconfigured Sending Domain <sandbox.mailtarget.co>');
    } finally {
      await off.stop();
    }
    const keyless = tempDir('keyless-sandbox');
    accountFolder(key, keyless).write('sandbox.yaml', sendingDomainYaml('mtrelay-system', 'sandbox', 'sandbox.mailtarget.co'));
    const unsigned = await RelayProcess.start({ resources: keyless, kafka: testKafka(), args: ['--allow-auth-without-tls', '--sandbox-domain', 'sandbox.mailtarget.co'] });
    try {
      const result = await swaks(submitArgs({ port: unsigned.ports.submission, key, tls: 'none', from: 'try@sandbox.mailtarget.co' }));
      assert.equal(result.dataReply, '451 4.7.5 The sandbox domain sandbox.mailtarget.co has no DKIM key; mtrelay sends only signed mail');
    } finally {
      await unsigned.stop();
    }
  });

  test('more recipients than allowed: 452 4.5.3 for the extra ones, the rest is accepted', async () => {
    const result = await swaks(submitArgs({ port: plainRelay.ports.submission, key, tls: 'none', to: 'a@r.test,b@r.test,c@r.test,d@r.test' }));
    assert.ok(result.replies.some((r) => /^452 4\.5\.3 /.test(r)), result.output);
    assert.ok(transmissionOf(result.dataReply), result.output);
  });
});
