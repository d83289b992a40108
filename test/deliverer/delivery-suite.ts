// The delivery suite, run once through relay → Kafka → deliverer and once through
// standalone mode: a DNS server on loopback and SMTP sinks with TLS from a test CA play
// the mailbox providers. Each rule of the seed is checked on the bytes they receive.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { readTrackingKeys, writeNewTrackingKeys } from '../../shared/tracking/keys-file.ts';
import { verifyToken } from '../../shared/tracking/tokens.ts';
import { verifyDkim } from '../helpers/dkim-verify.ts';
import { mimeParts } from '../helpers/mime-parts.ts';
import { TestDnsServer } from '../helpers/dns-server.ts';
import { accountFolder, dkimSecretYaml, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';
import { createTestCa } from '../helpers/tls.ts';
import { sharedPort } from '../helpers/ports.ts';

export type Event = { type: string; rcpt_to: string; rcpt_type: string; transmission_id: string; bounce_class?: number; raw_reason?: string; num_retries: number; tls?: boolean };

/** How the suite reaches the system under test. */
export interface DeliveryHarness {
  start(resources: string, deliveryArgs: string[]): Promise<void>;
  submitPort(): number;
  events(): Event[];
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** SIGKILL whatever delivers (the deliverer, or the whole standalone process), then start it again. */
  crashAndRestart(beforeRestart: () => void): Promise<void>;
  stop(): Promise<void>;
}

export function deliverySuite(harness: DeliveryHarness): void {
  const key = newApiKey();
  const account = accountFolder(key);
  const ca = createTestCa();
  const mxCert = ca.issue('mx', ['mx1.recipient.test', 'mx2.recipient.test', 'mx.plain.test']);
  const dkim = generateKeyPairSync('rsa', { modulusLength: 2048 });
  account.write('dkim.yaml', dkimSecretYaml('acme', 'example-com', dkim.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()));
  // The account tracks clicks by default; opens only where X-MT-ATTR asks.
  account.write('settings.yaml', 'apiVersion: mtrelay.dev/v1alpha1\nkind: AccountSettings\nmetadata: {name: default, namespace: acme}\nspec: {tracking: {clicks: true}}\n');
  const trackingKeys = `${tempDir('tracking-keys')}/keys`;
  writeNewTrackingKeys(trackingKeys);
  const dns = new TestDnsServer();
  let port: number;
  let mx1: SmtpSink;
  let mx2: SmtpSink;
  let plain: SmtpSink;
  /** Verified TLS must refuse these two: a certificate for other names, and an expired one. */
  let wrongName: SmtpSink;
  let expired: SmtpSink;
  let dnsAddress: string;

  function deliveryArgs(): string[] {
    // The sinks play the Internet on loopback, which the deliverer refuses by default: only their addresses are allowed.
    return ['--dns', dnsAddress, '--allow-destination', '127.0.0.2/32,127.0.0.3/32,127.0.0.4/32,127.0.0.5/32,127.0.0.6/32,127.0.0.7/32', '--smtp-port', String(port), '--tls-ca', ca.caCert,
      '--tls-policy', 'plain-required.test=required', '--tls-policy', 'recipient.test=verified', '--tls-policy', 'wrongname.test=verified', '--tls-policy', 'expired.test=verified',
      '--retry-delays', '1s,2s', '--retry-expiry', '15s', '--connect-timeout', '2s', '--socket-timeout', '3s',
      '--bounce-domain', 'bounces.example.com', '--helo-name', 'out.example.com',
      '--tracking-keys', trackingKeys, '--tracking-url', 'https://track.mtrelay.test'];
  }

  before(async () => {
    port = await sharedPort(['127.0.0.2', '127.0.0.3', '127.0.0.5', '127.0.0.6', '127.0.0.7']);
    mx1 = new SmtpSink({ host: '127.0.0.2', port, tls: mxCert });
    mx2 = new SmtpSink({ host: '127.0.0.3', port, tls: mxCert });
    plain = new SmtpSink({ host: '127.0.0.5', port, tls: mxCert, starttls: false });
    wrongName = new SmtpSink({ host: '127.0.0.6', port, tls: mxCert });
    expired = new SmtpSink({ host: '127.0.0.7', port, tls: await ca.issueExpired('expired-mx', ['mx.expired.test']) });
    await Promise.all([mx1.listen(), mx2.listen(), plain.listen(), wrongName.listen(), expired.listen()]);
    dns.set('recipient.test', { MX: [{ exchange: 'mx2.recipient.test', priority: 20 }, { exchange: 'mx1.recipient.test', priority: 10 }] });
    dns.set('mx1.recipient.test', { A: ['127.0.0.2'] });
    dns.set('mx2.recipient.test', { A: ['127.0.0.3'] });
    dns.set('fallback.test', { MX: [{ exchange: 'dead.fallback.test', priority: 10 }, { exchange: 'mx2.recipient.test', priority: 20 }] });
    dns.set('dead.fallback.test', { A: ['127.0.0.4'] });
    dns.set('null-mx.test', { MX: [{ exchange: '', priority: 0 }] });
    dns.set('plain.test', { MX: [{ exchange: 'mx.plain.test', priority: 10 }] });
    dns.set('plain-required.test', { MX: [{ exchange: 'mx.plain.test', priority: 10 }] });
    dns.set('mx.plain.test', { A: ['127.0.0.5'] });
    dns.set('wrongname.test', { MX: [{ exchange: 'mx.wrongname.test', priority: 10 }] });
    dns.set('mx.wrongname.test', { A: ['127.0.0.6'] });
    dns.set('expired.test', { MX: [{ exchange: 'mx.expired.test', priority: 10 }] });
    dns.set('mx.expired.test', { A: ['127.0.0.7'] });
    dns.set('internal.test', { MX: [{ exchange: 'mx.internal.test', priority: 10 }] });
    dns.set('mx.internal.test', { A: ['127.0.0.9', '169.254.169.254', '10.0.0.1'] });
    const spki = dkim.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    dns.set('mtrelay._domainkey.example.com', { TXT: [`v=DKIM1; k=rsa; p=${spki}`] });
    dnsAddress = await dns.start();
    await harness.start(account.dir, deliveryArgs());
  });

  after(async () => {
    await harness.stop();
    await Promise.all([mx1?.close(), mx2?.close(), plain?.close(), wrongName?.close(), expired?.close(), dns.stop()]);
  });

  async function send(to: string[], attr?: object, subject = 'Hello', html?: string): Promise<string> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: harness.submitPort(), secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
    try {
      const info = await transport.sendMail({
        from: 'Shop <shop@example.com>', to, subject, text: `body ${randomUUID()}`, messageId: `<${randomUUID()}@example.com>`,
        ...(attr ? { headers: { 'X-MT-ATTR': JSON.stringify(attr) } } : {}),
        ...(html ? { html } : {}),
      });
      return /OK (\d+)$/.exec(info.response)![1]!;
    } finally {
      transport.close();
    }
  }

  async function sendWithHeaders(to: string[], headers: Record<string, string>): Promise<string> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: harness.submitPort(), secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
    try {
      const info = await transport.sendMail({ from: 'Shop <shop@example.com>', to, subject: 'Own list', text: `body ${randomUUID()}`, headers });
      return /OK (\d+)$/.exec(info.response)![1]!;
    } finally {
      transport.close();
    }
  }

  function eventsOf(id: string): Event[] {
    return harness.events().filter((e) => e.transmission_id === id);
  }

  async function waitForEvent(id: string, predicate: (e: Event) => boolean, timeoutMs = 30_000): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = eventsOf(id).find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no such event for ${id}; have ${JSON.stringify(eventsOf(id))}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  describe('fan-out, DKIM and TLS on the received bytes', () => {
    test('cc, bcc and archive copies exactly as the seed says', async () => {
      // Transactional: no per-recipient unsubscribe link, so identical copies can share a transaction.
      const id = await send(['to1@recipient.test'], {
        cc: ['cc1@recipient.test', { email: 'cc2@recipient.test', name: 'C Two' }],
        bcc: ['bcc1@recipient.test', 'bcc2@recipient.test', 'cc1@recipient.test'],
        archive: ['arch@recipient.test', 'TO1@recipient.test'],
        optionsAttributes: { transactional: true },
      });
      const all = ['to1', 'cc1', 'cc2', 'bcc1', 'bcc2', 'arch'].map((l) => `${l}@recipient.test`);
      for (const address of all) await mx1.waitFor(address);
      for (const address of all) {
        const [copy] = mx1.for(address);
        const text = copy!.message.toString();
        const headers = text.split('\r\n\r\n')[0]!;
        assert.match(headers, /^To: to1@recipient\.test$/m, `${address}: the sender's To is kept`);
        assert.match(headers, /^Cc: cc1@recipient\.test, "C Two" <cc2@recipient\.test>$/m, `${address}: Cc shows all cc addresses`);
        assert.doesNotMatch(headers, /^X-MT-ATTR:/im);
        const bcc = headers.match(/^Bcc: .*$/gm) ?? [];
        assert.deepEqual(bcc, address.startsWith('bcc') ? [`Bcc: ${address}`] : [], `${address}: Bcc only on its own bcc copy`);
        assert.equal(mx1.for(address).length, 1, `${address} receives one copy`);
        assert.ok(copy!.tls, 'delivered over verified STARTTLS');
      }
      // Identical bytes for to, cc and archive: one transaction; each bcc copy on its own.
      const shared = mx1.for('to1@recipient.test')[0]!;
      assert.deepEqual(shared.rcptTo.sort(), ['arch@recipient.test', 'cc1@recipient.test', 'cc2@recipient.test', 'to1@recipient.test']);
      assert.equal(shared.mailFrom, `b+${id}@bounces.example.com`);
      assert.equal(mx1.for('bcc1@recipient.test')[0]!.mailFrom, `b+${id}+bcc1=recipient.test@bounces.example.com`);

      for (const address of all) await waitForEvent(id, (e) => e.type === 'delivery' && e.rcpt_to === address);
      const types = Object.fromEntries(eventsOf(id).filter((e) => e.type === 'delivery').map((e) => [e.rcpt_to, e.rcpt_type]));
      assert.deepEqual(types, { 'to1@recipient.test': 'to', 'cc1@recipient.test': 'cc', 'cc2@recipient.test': 'cc', 'bcc1@recipient.test': 'bcc', 'bcc2@recipient.test': 'bcc', 'arch@recipient.test': 'archive' });
      assert.equal(eventsOf(id).filter((e) => e.type === 'injection').length, 6);
    });

    test('every copy carries a DKIM signature that an independent verifier (dkimpy) accepts against the test DNS', async () => {
      const id = await send(['signed@recipient.test'], { bcc: ['signed-bcc@recipient.test'] });
      await waitForEvent(id, (e) => e.type === 'delivery' && e.rcpt_to === 'signed-bcc@recipient.test');
      for (const address of ['signed@recipient.test', 'signed-bcc@recipient.test']) {
        const [copy] = await mx1.waitFor(address);
        assert.match(copy!.message.toString(), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com;/m);
        assert.equal(await verifyDkim(copy!.message, dnsAddress), 'pass');
        // The verifier can fail: one changed byte of the body breaks the signature.
        const tampered = Buffer.from(copy!.message.toString('latin1').replace(/body /, 'bodY '), 'latin1');
        assert.match(await verifyDkim(tampered, dnsAddress), /^fail/);
      }
    });

    test('one-click unsubscribe: each copy of mail not marked transactional has its own signed List-Unsubscribe and List-Unsubscribe-Post, covered by DKIM; transactional mail, archive copies and a sender\'s own List-Unsubscribe are left alone', async () => {
      const keys = readTrackingKeys(trackingKeys);
      const id = await send(['unsub1@recipient.test', 'unsub2@recipient.test'], { archive: ['unsub-arch@recipient.test'], campaign_id: 'weekly' });
      for (const address of ['unsub1@recipient.test', 'unsub2@recipient.test']) {
        const [copy] = await mx1.waitFor(address);
        const headers = copy!.message.toString().split('\r\n\r\n')[0]!;
        const link = /^List-Unsubscribe: <https:\/\/track\.mtrelay\.test\/u\/([A-Za-z0-9_.-]+)>,\r\n <mailto:unsubscribe@bounces\.example\.com\?subject=([A-Za-z0-9_.-]+)>$/m.exec(headers);
        assert.ok(link, `${address}: ${headers}`);
        assert.equal(link[2], link[1], 'the mailto carries the same token');
        const verified = verifyToken(keys, link[1]!);
        assert.ok(verified.ok);
        assert.deepEqual([verified.claims.kind, verified.claims.rcptTo, verified.claims.transmissionId, verified.claims.namespace, verified.claims.campaignId], ['unsubscribe', address, id, 'acme', 'weekly']);
        assert.match(headers, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
        const signed = /^DKIM-Signature:[^]*? h=([^;]+);/m.exec(headers)![1]!.replace(/\s+/g, '').toLowerCase().split(':');
        assert.ok(signed.includes('list-unsubscribe') && signed.includes('list-unsubscribe-post'), `both fields are signed: ${signed.join(':')}`);
        assert.equal(await verifyDkim(copy!.message, dnsAddress), 'pass');
        assert.deepEqual(copy!.rcptTo, [address], 'a copy with its own link is its own transaction');
      }
      const [archived] = await mx1.waitFor('unsub-arch@recipient.test');
      assert.doesNotMatch(archived!.message.toString(), /^List-Unsubscribe/im, 'the archive copy has none');
      const receipt = await send(['receipt@recipient.test'], { optionsAttributes: { transactional: true } });
      await waitForEvent(receipt, (e) => e.type === 'delivery');
      assert.doesNotMatch((await mx1.waitFor('receipt@recipient.test'))[0]!.message.toString(), /^List-Unsubscribe/im, 'transactional mail has none');
      const own = await sendWithHeaders(['own-list@recipient.test'], { 'List-Unsubscribe': '<mailto:leave@lists.example.com>' });
      await waitForEvent(own, (e) => e.type === 'delivery');
      const ownCopy = (await mx1.waitFor('own-list@recipient.test'))[0]!.message.toString();
      assert.deepEqual(ownCopy.match(/^List-Unsubscribe.*$/gim), ['List-Unsubscribe: <mailto:leave@lists.example.com>'], 'the sender\'s own is kept, nothing added');
    });

    test('open and click tracking: each recipient its own signed links and pixels, DKIM still valid; archive and plain text untouched', async () => {
      const html = '<html><body><p>Sale</p><a href="https://shop.example/sale?a=1&amp;b=2">Sale</a> <a href="mailto:help@example.com">help</a></body></html>';
      const id = await send(['track1@recipient.test', 'track2@recipient.test'], { optionsAttributes: { openTracking: true }, archive: ['track-arch@recipient.test'], campaign_id: 'spring' }, 'Tracked', html);
      const keys = readTrackingKeys(trackingKeys);
      const tokens = (text: string, kind: string) => [...text.matchAll(new RegExp(`https://track\\.mtrelay\\.test/${kind}/([A-Za-z0-9_.-]+?)(?:\\.gif)?"`, 'g'))]
        .map(([, token]) => verifyToken(keys, token!)).map((v) => (v.ok ? v.claims : assert.fail(`token does not verify: ${v.reason}`)));
      for (const address of ['track1@recipient.test', 'track2@recipient.test']) {
        const [copy] = await mx1.waitFor(address);
        assert.deepEqual(copy!.rcptTo, [address], 'a tracked copy is its own transaction');
        assert.equal(await verifyDkim(copy!.message, dnsAddress), 'pass');
        const parts = mimeParts(copy!.message).parts;
        assert.match(parts.find((p) => p.type === 'text/plain')!.text!, /^body [0-9a-f-]{36}$/, 'plain text untouched');
        const text = parts.find((p) => p.type === 'text/html')!.text!;
        assert.match(text, /<a href="mailto:help@example\.com">help<\/a>/);
        assert.deepEqual(tokens(text, 'c').map((c) => [c.kind, c.target, c.rcptTo, c.transmissionId, c.namespace, c.campaignId]),
          [['click', 'https://shop.example/sale?a=1&b=2', address, id, 'acme', 'spring']]);
        assert.deepEqual(tokens(text, 'o').map((c) => [c.kind, c.rcptTo]), [['initial_open', address], ['open', address]]);
      }
      const delivered = await waitForEvent(id, (e) => e.type === 'delivery' && e.rcpt_to === 'track1@recipient.test') as Event & Record<string, unknown>;
      assert.deepEqual([delivered.open_tracking, delivered.click_tracking, delivered.initial_pixel], [true, true, true]);
      const archiveEvent = await waitForEvent(id, (e) => e.type === 'delivery' && e.rcpt_to === 'track-arch@recipient.test') as Event & Record<string, unknown>;
      assert.equal(archiveEvent.click_tracking, undefined, 'the archive copy was not tracked');
      const [archived] = await mx1.waitFor('track-arch@recipient.test');
      assert.doesNotMatch(archived!.message.toString(), /track\.mtrelay\.test/, 'the archive copy is as the sender wrote it');
      assert.equal(await verifyDkim(archived!.message, dnsAddress), 'pass');
      // X-MT-ATTR turns the account's click tracking off for one message.
      const untracked = await send(['track3@recipient.test'], { optionsAttributes: { clickTracking: false } }, 'Not tracked', html);
      await waitForEvent(untracked, (e) => e.type === 'delivery');
      const untrackedHtml = mimeParts((await mx1.waitFor('track3@recipient.test'))[0]!.message).parts.find((p) => p.type === 'text/html')!.text!;
      assert.doesNotMatch(untrackedHtml, /track\.mtrelay\.test/, 'no tracked link in the body (its List-Unsubscribe link is in the header)');
    });

    test('the tracking corpus (quoted-printable, base64, Latin-1, ISO-2022-JP, UTF-16, nested multiparts) through the real deliverer: tracked, valid MIME, DKIM valid', async () => {
      const corpus = ['qp-utf8-links.eml', 'nested-latin1-base64.eml', 'iso-2022-jp.eml', 'utf16-base64.eml'];
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port: harness.submitPort(), secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
      try {
        for (const [i, name] of corpus.entries()) {
          const raw = Buffer.concat([Buffer.from('X-MT-ATTR: {"optionsAttributes":{"openTracking":true}}\r\n'), readFileSync(new URL(`../fixtures/tracking/${name}`, import.meta.url))]);
          await transport.sendMail({ envelope: { from: 'shop@example.com', to: [`corpus${i}@recipient.test`] }, raw });
        }
      } finally {
        transport.close();
      }
      for (const [i, name] of corpus.entries()) {
        const [copy] = await mx1.waitFor(`corpus${i}@recipient.test`);
        assert.equal(await verifyDkim(copy!.message, dnsAddress), 'pass', `${name}: DKIM`);
        const { defects, parts } = mimeParts(copy!.message);
        assert.deepEqual([defects, ...parts.map((p) => p.defects)].flat(), [], `${name}: valid MIME`);
        const html = parts.filter((p) => p.type === 'text/html' && p.disposition !== 'attachment').map((p) => p.text!).join('');
        assert.match(html, /href="https:\/\/track\.mtrelay\.test\/c\/[^"]+"/, `${name}: links tracked`);
        assert.match(html, /src="https:\/\/track\.mtrelay\.test\/o\/[^"]+\.gif"/, `${name}: pixels`);
      }
    });

    test('verified TLS refuses a certificate for another name and an expired one: the recipients wait, nothing is sent', async () => {
      const id = await send(['someone@wrongname.test', 'someone@expired.test']);
      const mismatch = await waitForEvent(id, (e) => e.type === 'delay' && e.rcpt_to === 'someone@wrongname.test');
      assert.match(mismatch.raw_reason ?? '', /mx\.wrongname\.test.*TLS policy verified.*the certificate does not name mx\.wrongname\.test/i);
      const old = await waitForEvent(id, (e) => e.type === 'delay' && e.rcpt_to === 'someone@expired.test');
      assert.match(old.raw_reason ?? '', /mx\.expired\.test.*TLS policy verified.*the certificate has expired/i);
      assert.equal(wrongName.received.length + expired.received.length, 0);
      assert.ok(wrongName.connections > 0 && expired.connections > 0, 'both servers were tried, and refused at TLS');
    });

    test('opportunistic TLS delivers in the clear to a server without STARTTLS; required TLS waits', async () => {
      const id = await send(['someone@plain.test', 'someone@plain-required.test']);
      await plain.waitFor('someone@plain.test');
      assert.equal(plain.for('someone@plain.test')[0]!.tls, false);
      const delay = await waitForEvent(id, (e) => e.type === 'delay' && e.rcpt_to === 'someone@plain-required.test');
      assert.match(delay.raw_reason ?? '', /STARTTLS|TLS/i);
      assert.equal(plain.for('someone@plain-required.test').length, 0);
    });
  });

  describe('SMTP smuggling', () => {
    // End-of-data look-alikes that smuggling scanners send, each followed by a whole second
    // transaction. The relay ends DATA only at CRLF "." CRLF; it stores every other line ending
    // as CRLF and refuses NUL bytes; the deliverer dot-stuffs what it sends. So the mailbox must
    // get one message with the smuggled lines as its text, and nothing for the smuggled recipient.
    const VARIANTS = ['\n.\n', '\n.\r\n', '\r.\r\n', '\r\n.\r', '\r\n\x00.\r\n', '\r\n.\x00\r\n', '\n\n.\r\n', '\r\r\n.\r\r\n',
      '\r\n.\n', '\r.\n', '\n.\r', '\r.\r', '\r\n.\r\r\n', '\r\n\r.\r\n', '\r\n .\r\n'];

    test('every end-of-data variant followed by a smuggled transaction: one reply, one message, nothing for the smuggled recipient', async () => {
      const outcomes = await Promise.all(VARIANTS.map(async (variant, n) => {
        const client = await RawSmtp.connect(harness.submitPort());
        try {
          await client.reply();
          assert.match((await client.login(key))!, /^235 /);
          assert.match((await client.command('MAIL FROM:<shop@example.com>'))!, /^250 /);
          assert.match((await client.command(`RCPT TO:<smuggle-${n}@recipient.test>`))!, /^250 /);
          assert.match((await client.command('DATA'))!, /^354 /);
          await client.write(`From: shop@example.com\r\nTo: smuggle-${n}@recipient.test\r\nSubject: smuggle ${n}\r\nMessage-ID: <${randomUUID()}@example.com>\r\n\r\nbefore${variant}`
            + `MAIL FROM:<shop@example.com>\r\nRCPT TO:<smuggled-${n}@recipient.test>\r\nDATA\r\nFrom: shop@example.com\r\nSubject: smuggled\r\n\r\nsmuggled ${n}\r\n.\r\n`);
          const first = await client.reply();
          // Whatever the relay made of it, the next reply is QUIT's: no second transaction was answered.
          assert.match((await client.command('QUIT'))!, /^221 /, `variant ${JSON.stringify(variant)}: after ${first}`);
          return { variant, n, reply: first! };
        } finally {
          client.close();
        }
      }));
      for (const { variant, n, reply } of outcomes) {
        const name = JSON.stringify(variant);
        if (variant.includes('\x00')) {
          assert.equal(reply, '550 5.6.0 Message contains a NUL byte (RFC 5322 2.1)', name);
          continue;
        }
        const id = /^250 2\.0\.0 OK (\d+)$/.exec(reply)?.[1];
        assert.ok(id, `${name}: ${reply}`);
        await waitForEvent(id, (e) => e.type === 'delivery' && e.rcpt_to === `smuggle-${n}@recipient.test`);
        const [copy] = await mx1.waitFor(`smuggle-${n}@recipient.test`);
        // The smuggled lines arrived as the message's text, in CRLF lines, the dot line included.
        assert.match(copy!.message.toString('latin1'), new RegExp(`\\r\\n\\r\\nbefore\\r\\n[\\s\\S]*MAIL FROM:<shop@example\\.com>\\r\\nRCPT TO:<smuggled-${n}@recipient\\.test>\\r\\nDATA\\r\\n[\\s\\S]*smuggled ${n}\\r\\n$`), name);
        assert.doesNotMatch(copy!.message.toString('latin1'), /[^\r]\n|\r[^\n]/, `${name}: only CRLF line endings`);
      }
      for (const { n } of outcomes) {
        assert.equal(mx1.for(`smuggle-${n}@recipient.test`).length, outcomes[n]!.variant.includes('\x00') ? 0 : 1);
        assert.deepEqual([...mx1.received, ...mx2.received].filter((r) => r.rcptTo.some((a) => a.startsWith(`smuggled-${n}@`))), [], `variant ${JSON.stringify(outcomes[n]!.variant)}: nothing reached the smuggled recipient`);
      }
    });
  });

  describe('routes', () => {
    test('an unreachable first MX falls back to the next one', async () => {
      const id = await send(['x@fallback.test']);
      await mx2.waitFor('x@fallback.test');
      await waitForEvent(id, (e) => e.type === 'delivery');
    });

    test('with AUTH, mail goes to the domain after the last @ only: % and ! mean nothing, a source route is dropped', async () => {
      const client = await RawSmtp.connect(harness.submitPort());
      await client.reply();
      assert.match((await client.login(key))!, /^235 /);
      assert.match((await client.command('MAIL FROM:<shop@example.com>'))!, /^250 /);
      const accepted = ['<user%evil.test@recipient.test>', '<evil.test!bang@recipient.test>', '<@evil.test,@other.test:routed@recipient.test>'];
      for (const rcpt of accepted) assert.match((await client.command(`RCPT TO:${rcpt}`))!, /^250 /, rcpt);
      // Two @ and a quoted local part holding an @ are refused at RCPT: no reading of them could be safe.
      for (const rcpt of ['<user@evil.test@recipient.test>', '<"user@evil.test"@recipient.test>']) {
        assert.match((await client.command(`RCPT TO:${rcpt}`))!, /^5\d\d 5\.1\.3 /, rcpt);
      }
      assert.match((await client.command('DATA'))!, /^354 /);
      await client.write(`From: shop@example.com\r\nSubject: routing\r\nMessage-ID: <${randomUUID()}@example.com>\r\n\r\nrouting\r\n.\r\n`);
      const id = /^250 2\.0\.0 OK (\d+)$/.exec((await client.reply())!)?.[1];
      assert.ok(id);
      client.close();
      for (const address of ['user%evil.test@recipient.test', 'evil.test!bang@recipient.test', 'routed@recipient.test']) {
        await waitForEvent(id, (e) => e.type === 'delivery' && e.rcpt_to === address);
      }
      // Each as written, to recipient.test's MX (each its own transaction: each copy has its own unsubscribe link).
      for (const address of ['evil.test!bang@recipient.test', 'routed@recipient.test', 'user%evil.test@recipient.test']) {
        assert.deepEqual((await mx1.waitFor(address))[0]!.rcptTo, [address]);
      }
    });

    test('an address literal and a domain whose MX points into loopback, link-local or private ranges bounce (class 25); nothing is sent there', async () => {
      const id = await send(['literal@[127.0.0.2]', 'ssrf@internal.test']);
      const literal = await waitForEvent(id, (e) => e.type === 'bounce' && e.rcpt_to === 'literal@[127.0.0.2]');
      assert.equal(literal.bounce_class, 25);
      assert.equal(literal.raw_reason, '550 5.7.1 Recipient domain [127.0.0.2] is an address literal; mail goes to domain names only');
      const internal = await waitForEvent(id, (e) => e.type === 'bounce' && e.rcpt_to === 'ssrf@internal.test');
      assert.equal(internal.bounce_class, 25);
      assert.equal(internal.raw_reason, '550 5.7.1 Domain internal.test resolves only to addresses mtrelay does not deliver to: 127.0.0.9, 169.254.169.254, 10.0.0.1');
      assert.deepEqual([...mx1.received, ...mx2.received, ...plain.received].filter((r) => r.rcptTo.some((a) => a.startsWith('literal@') || a.startsWith('ssrf@'))), []);
      // A policy refusal says nothing about the address: it is not suppressed, the next message bounces for the same reason.
      const again = await send(['ssrf@internal.test']);
      const next = await waitForEvent(again, (e) => e.type === 'bounce' || e.type === 'policy_rejection');
      assert.deepEqual([next.type, next.bounce_class], ['bounce', 25]);
    });

    test('a null MX bounces at once', async () => {
      const id = await send(['x@null-mx.test']);
      const bounce = await waitForEvent(id, (e) => e.type === 'bounce');
      assert.equal(bounce.bounce_class, 10);
      assert.match(bounce.raw_reason ?? '', /null MX/);
    });
  });

  describe('outcomes', () => {
    test('5xx: bounce with its class, the address is suppressed, and the next message to it is never sent', async () => {
      mx1.script.set('gone@recipient.test', '550 5.1.1 No such user here');
      const first = await send(['gone@recipient.test', 'fine@recipient.test']);
      const bounce = await waitForEvent(first, (e) => e.type === 'bounce');
      assert.equal(bounce.rcpt_to, 'gone@recipient.test');
      assert.equal(bounce.bounce_class, 10);
      assert.equal(bounce.raw_reason, '550 5.1.1 No such user here');
      await waitForEvent(first, (e) => e.type === 'delivery' && e.rcpt_to === 'fine@recipient.test');
      mx1.script.delete('gone@recipient.test');
      const second = await send(['gone@recipient.test']);
      const rejection = await waitForEvent(second, (e) => e.type === 'policy_rejection');
      assert.equal(rejection.rcpt_to, 'gone@recipient.test');
      assert.equal(mx1.for('gone@recipient.test').length, 0, 'a suppressed recipient is never contacted');
    });

    test('4xx: delay, then the retry ladder, then delivery', async () => {
      mx1.script.set('later@recipient.test', '451 4.2.0 Mailbox busy, try later');
      const id = await send(['later@recipient.test']);
      const delay = await waitForEvent(id, (e) => e.type === 'delay');
      assert.equal(delay.raw_reason, '451 4.2.0 Mailbox busy, try later');
      mx1.script.delete('later@recipient.test');
      const delivery = await waitForEvent(id, (e) => e.type === 'delivery');
      assert.ok(delivery.num_retries >= 1);
      assert.ok(await harness.metric('mtrelay_deliverer_retries_total', { rung: '1s' }) >= 1);
    });

    test('a temporary failure that outlives the expiry becomes a bounce', async () => {
      mx1.script.set('never@recipient.test', '452 4.2.2 Mailbox full');
      const id = await send(['never@recipient.test']);
      const bounce = await waitForEvent(id, (e) => e.type === 'bounce', 50_000);
      assert.match(bounce.raw_reason ?? '', /^452 4\.2\.2 Mailbox full \(gave up after \d+ attempts\)$/);
      assert.equal(bounce.bounce_class, 22);
      assert.ok(eventsOf(id).filter((e) => e.type === 'delay').length >= 2);
    });

    test('a connection dropped mid-DATA and a server that stalls are temporary failures', async () => {
      // Both MX hosts misbehave, or the deliverer would (rightly) fall back to the other one.
      for (const mx of [mx1, mx2]) {
        mx.script.set('drop@recipient.test', 'drop');
        mx.script.set('stall@recipient.test', 'stall');
      }
      const dropped = await send(['drop@recipient.test']);
      const stalled = await send(['stall@recipient.test']);
      await waitForEvent(dropped, (e) => e.type === 'delay');
      await waitForEvent(stalled, (e) => e.type === 'delay', 20_000);
      for (const mx of [mx1, mx2]) {
        mx.script.delete('drop@recipient.test');
        mx.script.delete('stall@recipient.test');
      }
      await waitForEvent(dropped, (e) => e.type === 'delivery');
      await waitForEvent(stalled, (e) => e.type === 'delivery');
    });

    test('metrics count outcomes by type, bounce class, reply name, destination and account', async () => {
      const metric = (labels: Record<string, string>) => harness.metric('mtrelay_deliverer_outcomes_total', labels);
      const deliveries = (tls: string) => harness.metric('mtrelay_deliverer_deliveries_total', { destination: 'other', tls });
      const before = {
        delivered: await metric({ type: 'delivery', reply: 'remote', destination: 'other' }),
        bounced: await metric({ type: 'bounce', bounce_class: '10', reply: 'remote' }),
        nullMx: await metric({ type: 'bounce', bounce_class: '10', reply: 'NULL_MX' }),
        latency: await harness.metric('mtrelay_deliverer_accept_to_delivery_seconds_count'),
        accountBounces: await harness.metric('mtrelay_deliverer_account_outcomes_total', { account: 'acme', type: 'bounce' }),
        tls: { true: await deliveries('true'), false: await deliveries('false') },
      };
      mx1.script.set('metered-gone@recipient.test', '550 5.1.1 No such user here');
      const id = await send(['metered@recipient.test', 'metered-gone@recipient.test', 'metered@null-mx.test']);
      const delivered = await waitForEvent(id, (e) => e.type === 'delivery' && e.rcpt_to === 'metered@recipient.test');
      await waitForEvent(id, (e) => e.type === 'bounce' && e.rcpt_to === 'metered-gone@recipient.test');
      await waitForEvent(id, (e) => e.type === 'bounce' && e.rcpt_to === 'metered@null-mx.test');
      mx1.script.delete('metered-gone@recipient.test');
      // At least: a retry of another test may finish meanwhile.
      assert.ok(await metric({ type: 'delivery', reply: 'remote', destination: 'other' }) >= before.delivered + 1);
      assert.ok(await harness.metric('mtrelay_deliverer_account_outcomes_total', { account: 'acme', type: 'bounce' }) >= before.accountBounces + 2);
      const tls = String(Boolean(delivered.tls)) as 'true' | 'false';
      assert.ok(await deliveries(tls) >= before.tls[tls] + 1, `the delivery counts as tls=${tls}, as its event says`);
      assert.ok(await metric({ type: 'bounce', bounce_class: '10', reply: 'remote' }) >= before.bounced + 1);
      assert.ok(await metric({ type: 'bounce', bounce_class: '10', reply: 'NULL_MX' }) >= before.nullMx + 1, 'mtrelay\'s own reply is counted by its name');
      assert.ok(await harness.metric('mtrelay_deliverer_accept_to_delivery_seconds_count') >= before.latency + 1);
    });
  });

  describe('crash safety', () => {
    test('killed mid-batch with kill -9: every message answered 250 is delivered after the restart (duplicates allowed)', async () => {
      const addresses = Array.from({ length: 40 }, (_, i) => `crash${i}@recipient.test`);
      mx1.script.set(addresses[0]!, 'stall'); // keeps a record in flight when the kill comes
      await Promise.all(addresses.map((a) => send([a])));
      await mx1.waitFor(addresses[5]!);
      await harness.crashAndRestart(() => mx1.script.delete(addresses[0]!));
      for (const address of addresses) await mx1.waitFor(address, 1, 60_000);
    });
  });
}
