// TLS that cannot be stripped, through `mtrelay standalone`: the test DNS server publishes
// `_mta-sts` TXT records and, as a validating resolver would, DNSSEC-validated MX and TLSA
// records; a real HTTPS server serves the MTA-STS policies; SMTP sinks present matching,
// mismatching, self-signed and missing certificates. The configured policy is opportunistic
// throughout, so everything stricter comes from DANE or MTA-STS.
// @needs processes openssl
// @limit 90s
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { TestDnsServer } from '../helpers/dns-server.ts';
import { eventually } from '../helpers/eventually.ts';
import { sharedPort } from '../helpers/ports.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { createTestCa } from '../helpers/tls.ts';

type Event = { type: string; rcpt_to: string; transmission_id: string; raw_reason?: string; tls?: boolean };

const key = newApiKey();
const account = accountFolder(key);
const ca = createTestCa();
const dns = new TestDnsServer();
const state = tempDir('transport-security');
/** The policy host of every domain: one HTTPS server, the policy chosen by Host. */
const POLICY_ADDRESS = '127.0.81.1';
const policies = new Map<string, string>();
let policyServer: https.Server;
let port: number;
let standalone: MtrelayProcess;
let submitPort = 0;
const sinks: Record<string, SmtpSink> = {};

const policy = (mode: string, mx: string[]) => `version: STSv1\r\nmode: ${mode}\r\n${mx.map((m) => `mx: ${m}\r\n`).join('')}max_age: 86400\r\n`;

/** A self-signed certificate no CA vouches for: only DANE-EE can make it acceptable. */
function selfSigned(name: string): { cert: string; key: string } {
  const cert = path.join(ca.dir, `${name}-self.pem`);
  const keyFile = path.join(ca.dir, `${name}-self.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', cert, '-days', '2',
    '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  return { cert, key: keyFile };
}

/** TLSA data: SHA-256 of a certificate's public key (selector 1, matching type 1) or of the whole certificate (0, 1). */
function tlsaOf(pemFile: string, selector: 0 | 1): Buffer {
  const cert = new X509Certificate(readFileSync(pemFile));
  const data = selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(data).digest();
}

function events(): Event[] {
  const log = path.join(state, 'events.jsonl');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event) : [];
}

const waitForEvent = (id: string, rcpt: string, type: string) =>
  eventually(`${type} for ${rcpt}`, () => events().find((e) => e.transmission_id === id && e.rcpt_to === rcpt && e.type === type), 30_000);

async function send(to: string[]): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: submitPort, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
  try {
    const info = await transport.sendMail({ from: 'shop@example.com', to, subject: 'TLS', text: 'hello', headers: { 'X-MT-ATTR': '{"optionsAttributes":{"transactional":true}}' } });
    return /OK (\d+)$/.exec(info.response)![1]!;
  } finally {
    transport.close();
  }
}

/** A domain whose one MX host is `mx.<domain>` at `address`, served by `sink`. */
function mxDomain(domain: string, address: string, options: { dnssec?: boolean } = {}): void {
  dns.set(domain, { MX: [{ exchange: `mx.${domain}`, priority: 10 }], ...options });
  dns.set(`mx.${domain}`, { A: [address], ...options });
}

function publishPolicy(domain: string, text: string, id = '20261130'): void {
  dns.set(`_mta-sts.${domain}`, { TXT: [`v=STSv1; id=${id}`] });
  dns.set(`mta-sts.${domain}`, { A: [POLICY_ADDRESS] });
  policies.set(`mta-sts.${domain}`, text);
}

before(async () => {
  const addresses = ['127.0.81.10', '127.0.81.11', '127.0.81.12', '127.0.81.13', '127.0.81.14', '127.0.81.15', '127.0.81.20', '127.0.81.21', '127.0.81.22', '127.0.81.23', '127.0.81.24'];
  port = await sharedPort(addresses);
  const domains = ['sts-enforce.test', 'sts-down.test', 'sts-badcert.test', 'sts-plain.test', 'sts-unlisted.test', 'sts-testing.test', 'dane-ee.test', 'dane-ta.test', 'dane-bad.test', 'dane-insecure.test', 'dane-insecure-address.test', 'dane-servfail.test'];
  const right = ca.issue('mx-right', domains.map((d) => `mx.${d}`));
  const wrong = ca.issue('mx-wrong', ['mx.somewhere-else.test']);
  const self = selfSigned('mx.dane-ee.test');
  // DANE-TA: the server sends its certificate and the CA's; the TLSA record names the CA.
  const chain = path.join(ca.dir, 'mx-right-chain.pem');
  writeFileSync(chain, readFileSync(right.cert, 'utf8') + readFileSync(ca.caCert, 'utf8'));

  const sink = (name: string, host: string, tls?: { cert: string; key: string }) => (sinks[name] = new SmtpSink({ host, port, ...(tls ? { tls } : { tls: right, starttls: false }) }));
  sink('sts-enforce', '127.0.81.10', right);
  sink('sts-badcert', '127.0.81.11', wrong);
  sink('sts-plain', '127.0.81.12');
  sink('sts-testing', '127.0.81.13', wrong);
  sink('sts-unlisted', '127.0.81.14', right);
  sink('sts-down', '127.0.81.15', wrong);
  sink('dane-ee', '127.0.81.20', self);
  sink('dane-ta', '127.0.81.21', { cert: chain, key: right.key });
  sink('dane-bad', '127.0.81.22', right);
  sink('dane-insecure', '127.0.81.23', self);
  sink('dane-insecure-address', '127.0.81.24', right);
  await Promise.all(Object.values(sinks).map((s) => s.listen()));

  mxDomain('sts-enforce.test', '127.0.81.10');
  publishPolicy('sts-enforce.test', policy('enforce', ['mx.sts-enforce.test']));
  mxDomain('sts-badcert.test', '127.0.81.11');
  publishPolicy('sts-badcert.test', policy('enforce', ['*.sts-badcert.test']));
  mxDomain('sts-plain.test', '127.0.81.12');
  publishPolicy('sts-plain.test', policy('enforce', ['mx.sts-plain.test']));
  mxDomain('sts-testing.test', '127.0.81.13');
  publishPolicy('sts-testing.test', policy('testing', ['mx.sts-testing.test']));
  mxDomain('sts-unlisted.test', '127.0.81.14');
  // A one-label wildcard does not cover a deeper name (RFC 8461 4.1).
  publishPolicy('sts-unlisted.test', policy('enforce', ['*.elsewhere.sts-unlisted.test', '*.test']));
  // The policy host does not answer (nothing listens there): no policy was ever had, so the configured policy applies.
  mxDomain('sts-down.test', '127.0.81.15');
  dns.set('_mta-sts.sts-down.test', { TXT: ['v=STSv1; id=1'] });
  dns.set('mta-sts.sts-down.test', { A: ['127.0.81.3'] });
  dns.set('_smtp._tls.sts-badcert.test', { TXT: ['v=TLSRPTv1; rua=https://reports.example/tlsrpt'] });

  const tlsa = (host: string, records: { usage: number; selector: number; matchingType: number; certificate: Buffer }[], dnssec = true) =>
    dns.set(`_${port}._tcp.${host}`, { TLSA: records, dnssec });
  mxDomain('dane-ee.test', '127.0.81.20', { dnssec: true });
  tlsa('mx.dane-ee.test', [{ usage: 3, selector: 1, matchingType: 1, certificate: tlsaOf(self.cert, 1) }]);
  // DANE comes before MTA-STS: this enforce policy lists another host and would refuse mx.dane-ee.test.
  publishPolicy('dane-ee.test', policy('enforce', ['mx.elsewhere.test']));
  mxDomain('dane-ta.test', '127.0.81.21', { dnssec: true });
  tlsa('mx.dane-ta.test', [{ usage: 2, selector: 0, matchingType: 1, certificate: tlsaOf(ca.caCert, 0) }]);
  mxDomain('dane-bad.test', '127.0.81.22', { dnssec: true });
  tlsa('mx.dane-bad.test', [{ usage: 3, selector: 1, matchingType: 1, certificate: tlsaOf(self.cert, 1) }]);
  // Not validated: the same mismatching record is ignored, as DANE only trusts signed zones.
  mxDomain('dane-insecure.test', '127.0.81.23');
  tlsa('mx.dane-insecure.test', [{ usage: 3, selector: 1, matchingType: 1, certificate: tlsaOf(right.cert, 1) }], false);
  // Signed MX and TLSA, but the host's address records are not validated: its TLSA records are not used (RFC 7672 2.2.2).
  dns.set('dane-insecure-address.test', { MX: [{ exchange: 'mx.dane-insecure-address.test', priority: 10 }], dnssec: true });
  dns.set('mx.dane-insecure-address.test', { A: ['127.0.81.24'] });
  tlsa('mx.dane-insecure-address.test', [{ usage: 3, selector: 1, matchingType: 1, certificate: tlsaOf(self.cert, 1) }]);
  mxDomain('dane-servfail.test', '127.0.81.99', { dnssec: true });
  dns.set(`_${port}._tcp.mx.dane-servfail.test`, { servfail: true });
  const dnsAddress = await dns.start();

  const policyCert = ca.issue('mta-sts', [...policies.keys()]);
  policyServer = https.createServer({ cert: readFileSync(policyCert.cert), key: readFileSync(policyCert.key) }, (request, response) => {
    const text = policies.get(String(request.headers.host));
    if (request.url !== '/.well-known/mta-sts.txt' || !text) return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'text/plain' }).end(text);
  });
  await new Promise<void>((resolve) => policyServer.listen(443, POLICY_ADDRESS, resolve));

  standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '-1', '--inbound-port', '-1', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
    '--dns', dnsAddress, '--smtp-port', String(port), '--allow-destination', '127.0.81.0/24', '--tls-ca', ca.caCert,
    '--retry-delays', '1s,2s', '--retry-expiry', '30s', '--connect-timeout', '2s', '--socket-timeout', '3s']);
  const ready = await standalone.started('standalone listening');
  submitPort = (ready.ports as { submission: number }).submission;
  standalone.metricsPort = ready.metricsPort as number;
});

after(async () => {
  await standalone?.stop();
  await Promise.all([...Object.values(sinks).map((s) => s.close()), dns.stop(), new Promise((resolve) => policyServer?.close(resolve))]);
});

test('MTA-STS enforce: verified TLS to a listed MX delivers; a wrong certificate, no STARTTLS or an unlisted MX waits, and nothing is sent', async () => {
  const id = await send(['a@sts-enforce.test', 'b@sts-badcert.test', 'c@sts-plain.test', 'd@sts-unlisted.test']);
  const [delivered] = await sinks['sts-enforce']!.waitFor('a@sts-enforce.test');
  assert.equal(delivered!.tls, true);
  const badCert = await waitForEvent(id, 'b@sts-badcert.test', 'delay');
  assert.match(badCert.raw_reason ?? '', /^421 4\.4\.1 .*mx\.sts-badcert\.test.*TLS policy verified \(MTA-STS\): the certificate does not name mx\.sts-badcert\.test/);
  const plain = await waitForEvent(id, 'c@sts-plain.test', 'delay');
  assert.match(plain.raw_reason ?? '', /mx\.sts-plain\.test.*TLS policy verified \(MTA-STS\).*STARTTLS/);
  const unlisted = await waitForEvent(id, 'd@sts-unlisted.test', 'delay');
  assert.equal(unlisted.raw_reason, '451 4.7.5 No MX host of sts-unlisted.test may be used under its TLS policy: mx.sts-unlisted.test is not among the MTA-STS policy\'s mx (*.elsewhere.sts-unlisted.test, *.test)');
  assert.equal(sinks['sts-badcert']!.received.length + sinks['sts-plain']!.received.length + sinks['sts-unlisted']!.received.length, 0, 'nothing went to a host the policy refuses');
  assert.ok(await standalone.metric('mtrelay_deliverer_tls_sessions_total', { domain: 'sts-enforce.test', policy_type: 'sts', result: 'success' }) >= 1);
  assert.ok(await standalone.metric('mtrelay_deliverer_tls_sessions_total', { domain: 'sts-badcert.test', policy_type: 'sts', result: 'certificate-host-mismatch' }) >= 1);
  assert.ok(await standalone.metric('mtrelay_deliverer_tls_sessions_total', { domain: 'sts-plain.test', policy_type: 'sts', result: 'starttls-not-supported' }) >= 1);
});

test('MTA-STS testing, or a policy that cannot be fetched: the configured policy delivers, and the failure is reported', async () => {
  await send(['e@sts-testing.test', 'k@sts-down.test']);
  await sinks['sts-testing']!.waitFor('e@sts-testing.test');
  await sinks['sts-down']!.waitFor('k@sts-down.test');
  assert.ok(await standalone.metric('mtrelay_deliverer_tls_sessions_total', { domain: 'sts-down.test', policy_type: 'sts', result: 'sts-policy-fetch-error' }) >= 1);
  assert.ok(await standalone.metric('mtrelay_deliverer_tls_sessions_total', { domain: 'sts-testing.test', policy_type: 'sts', result: 'certificate-host-mismatch' }) >= 1);
});

test('DANE: validated TLSA records decide before MTA-STS; DANE-EE takes a self-signed certificate, DANE-TA a chain to the named CA; a mismatch waits', async () => {
  const id = await send(['f@dane-ee.test', 'g@dane-ta.test', 'h@dane-bad.test', 'i@dane-insecure.test', 'j@dane-servfail.test', 'l@dane-insecure-address.test']);
  assert.equal((await sinks['dane-ee']!.waitFor('f@dane-ee.test'))[0]!.tls, true, 'the MTA-STS policy naming another MX did not apply');
  await sinks['dane-ta']!.waitFor('g@dane-ta.test');
  await sinks['dane-insecure']!.waitFor('i@dane-insecure.test');
  await sinks['dane-insecure-address']!.waitFor('l@dane-insecure-address.test');
  const bad = await waitForEvent(id, 'h@dane-bad.test', 'delay');
  assert.match(bad.raw_reason ?? '', /mx\.dane-bad\.test.*TLS policy dane \(DANE\): no TLSA record matches the certificate the server presented/);
  assert.equal(sinks['dane-bad']!.received.length, 0);
  const servfail = await waitForEvent(id, 'j@dane-servfail.test', 'delay');
  assert.match(servfail.raw_reason ?? '', /^451 4\.7\.5 No MX host of dane-servfail\.test may be used under its TLS policy: mx\.dane-servfail\.test: DANE: TLSA _\d+\._tcp\.mx\.dane-servfail\.test: SERVFAIL$/);
  assert.ok(await standalone.metric('mtrelay_deliverer_tls_sessions_total', { domain: 'dane-ee.test', policy_type: 'tlsa', result: 'success' }) >= 1);
  assert.ok(await standalone.metric('mtrelay_deliverer_tls_sessions_total', { domain: 'dane-bad.test', policy_type: 'tlsa', result: 'validation-failure' }) >= 1);
  assert.ok(await standalone.metric('mtrelay_deliverer_tls_sessions_total', { domain: 'dane-insecure.test', policy_type: 'no-policy-found', result: 'success' }) >= 1);
});
