// TLS reports (RFC 8460): sessions tallied per domain and policy become a day's JSON report,
// gzipped and POSTed to the https: address the domain publishes in `_smtp._tls` TXT (a real DNS
// server and a real HTTPS receiver here), or mailed to its mailto: address through the real
// Deliverer and pool to an SMTP sink, DKIM-signed (checked by dkimpy). Also MTA-STS's MX
// patterns, which decide what enforce mode lets through.
// @needs openssl dkimpy
// @limit 30s
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import pino from 'pino';
import { DestinationPolicy } from '../../deliverer/destination-policy.ts';
import { mxMatches } from '../../deliverer/transport-security/mta-sts.ts';
import { TlsReports } from '../../deliverer/transport-security/tls-report.ts';
import { reportingAddresses, TlsReportSender } from '../../deliverer/transport-security/tls-report-sender.ts';
import { createPublicKey } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { parseAllDocuments } from 'yaml';
import { Deliverer } from '../../deliverer/delivery.ts';
import { RouteResolver } from '../../deliverer/routes.ts';
import { SmtpPool } from '../../deliverer/smtp-pool.ts';
import { reportMailer } from '../../deliverer/transport-security/tls-report-delivery.ts';
import { TransportSecurity } from '../../deliverer/transport-security/transport-security.ts';
import { compileConfig } from '../../shared/config/compiler.ts';
import { ConfigStore } from '../../shared/config/store.ts';
import { TestDnsServer } from '../helpers/dns-server.ts';
import { verifyDkim } from '../helpers/dkim-verify.ts';
import { mimeParts } from '../helpers/mime-parts.ts';
import { sharedPort } from '../helpers/ports.ts';
import { signedDomainYaml, testDkimKeyPem } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { createTestCa } from '../helpers/tls.ts';

const RECEIVER = '127.0.81.2';
let mailboxPort = 0;
const ca = createTestCa();
const dns = new TestDnsServer();
const received: { headers: IncomingHttpHeaders; body: Buffer; url: string }[] = [];
let receiver: https.Server;
let mailbox: SmtpSink;
let dnsAddress = '';
const resolver = new Resolver();

before(async () => {
  dns.set('reports.example', { A: [RECEIVER] });
  dns.set('_smtp._tls.asks.test', { TXT: ['v=TLSRPTv1; rua=https://reports.example/tlsrpt?d=asks,mailto:tlsrpt@asks.test'] });
  dns.set('_smtp._tls.twice.test', { TXT: ['v=TLSRPTv1; rua=https://reports.example/a', 'v=TLSRPTv1; rua=https://reports.example/b'] });
  const port = await sharedPort(['127.0.81.31']);
  mailbox = new SmtpSink({ host: '127.0.81.31', port });
  await mailbox.listen();
  dns.set('_smtp._tls.mailed.test', { TXT: ['v=TLSRPTv1; rua=mailto:tlsrpt@reports.mailed.test'] });
  dns.set('reports.mailed.test', { MX: [{ exchange: 'mx.reports.mailed.test', priority: 10 }] });
  dns.set('mx.reports.mailed.test', { A: ['127.0.81.31'] });
  const spki = createPublicKey(testDkimKeyPem()).export({ type: 'spki', format: 'der' }).toString('base64');
  dns.set('mtrelay._domainkey.mtrelay.example', { TXT: [`v=DKIM1; k=rsa; p=${spki}`] });
  dnsAddress = await dns.start();
  resolver.setServers([dnsAddress]);
  mailboxPort = port;
  const cert = ca.issue('reports', ['reports.example']);
  receiver = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks), url: request.url ?? '' });
      response.writeHead(201).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(443, RECEIVER, resolve));
});
after(async () => {
  await mailbox?.close();
  await dns.stop();
  await new Promise((resolve) => receiver.close(resolve));
});

test('MTA-STS mx patterns: exact names, and a wildcard covers exactly one more label (RFC 8461 4.1)', () => {
  assert.ok(mxMatches('mx1.example.com', 'mx1.example.com'));
  assert.ok(mxMatches('MX1.Example.COM.', 'mx1.example.com'));
  assert.ok(mxMatches('mx1.example.com', '*.example.com'));
  assert.ok(!mxMatches('example.com', '*.example.com'));
  assert.ok(!mxMatches('a.mx.example.com', '*.example.com'));
  assert.ok(!mxMatches('mx1.example.org', 'mx1.example.com'));
});

test('a day\'s sessions become one RFC 8460 report per domain, POSTed gzipped to the domain\'s https: address', async () => {
  const reports = new TlsReports();
  const day = '2026-11-29';
  const at = Date.parse(`${day}T12:00:00Z`);
  const sts = { type: 'sts' as const, domain: 'asks.test', text: ['version: STSv1', 'mode: enforce', 'mx: mx.asks.test', 'max_age: 86400'], mxHosts: ['mx.asks.test'] };
  for (let i = 0; i < 3; i++) reports.record({ policy: sts }, at);
  for (let i = 0; i < 2; i++) reports.record({ policy: sts, failure: { type: 'certificate-expired', mxHost: 'mx.asks.test', address: '192.0.2.1', localAddress: '198.51.100.7', detail: 'the certificate has expired' } }, at);
  reports.record({ policy: { type: 'no-policy-found', domain: 'silent.test', text: [] } }, at);
  reports.record({ policy: { type: 'no-policy-found', domain: 'twice.test', text: [] } }, at);
  reports.record({ policy: sts }, Date.parse('2026-11-30T00:00:01Z'));

  const sender = new TlsReportSender({
    reports, resolver, destinations: new DestinationPolicy({ allow: ['127.0.81.0/24'] }), ca: [readFileSync(ca.caCert)],
    submitter: { organization: 'mtrelay.example', contact: 'postmaster@mtrelay.example', instance: 'deliverer-0' }, logger: pino({ level: 'silent' }),
  });
  assert.deepEqual(await sender.send(day), ['https://reports.example/tlsrpt?d=asks'], 'only the domain that asks, only at its https: address');
  assert.equal(received.length, 1);
  const [post] = received;
  assert.equal(post!.url, '/tlsrpt?d=asks');
  assert.equal(post!.headers['content-type'], 'application/tlsrpt+gzip');
  assert.deepEqual(JSON.parse(gunzipSync(post!.body).toString('utf8')), {
    'organization-name': 'mtrelay.example',
    'date-range': { 'start-datetime': '2026-11-29T00:00:00Z', 'end-datetime': '2026-11-29T23:59:59Z' },
    'contact-info': 'postmaster@mtrelay.example',
    'report-id': '2026-11-29.asks.test.deliverer-0@mtrelay.example',
    policies: [{
      policy: { 'policy-type': 'sts', 'policy-string': sts.text, 'policy-domain': 'asks.test', 'mx-host': ['mx.asks.test'] },
      summary: { 'total-successful-session-count': 3, 'total-failure-session-count': 2 },
      'failure-details': [{
        'result-type': 'certificate-expired', 'sending-mta-ip': '198.51.100.7', 'receiving-mx-hostname': 'mx.asks.test', 'receiving-ip': '192.0.2.1',
        'failed-session-count': 2, 'additional-information': 'the certificate has expired',
      }],
    }],
  });
  assert.deepEqual(await sender.send(day), [], 'a day is sent once');
  assert.deepEqual(reports.domains('2026-11-30'), ['asks.test'], 'the next day is still being counted');
});

test('a domain with two TLSRPTv1 records asks for nothing (RFC 8460 3)', async () => {
  assert.deepEqual(await reportingAddresses(resolver, 'twice.test'), []);
  assert.deepEqual(await reportingAddresses(resolver, 'asks.test'), ['https://reports.example/tlsrpt?d=asks', 'mailto:tlsrpt@asks.test']);
});

test('a mailto: address gets the report as multipart/report mail from the operator\'s sending domain, DKIM-signed', async () => {
  const reports = new TlsReports();
  const day = '2026-11-28';
  reports.record({ policy: { type: 'tlsa', domain: 'mailed.test', text: ['3 1 1 00ff'] } }, Date.parse(`${day}T08:00:00Z`));
  const store = new ConfigStore();
  store.apply(compileConfig(parseAllDocuments(signedDomainYaml('ops', 'mtrelay-example', 'mtrelay.example')).map((d) => ({ source: 'ops.yaml', document: d.toJS() }))));
  const pool = new SmtpPool({ connectionsPerDestination: 1, messagesPerConnection: 1, messagesPerSecond: 0, heloName: 'out.mtrelay.example', ca: [], connectTimeoutMs: 2000, socketTimeoutMs: 5000 });
  const deliverer = new Deliverer({
    store, pool, isSuppressed: () => false, logger: pino({ level: 'silent' }),
    routes: new RouteResolver({ dnsServers: [dnsAddress], smtpPort: mailboxPort, destinations: new DestinationPolicy({ allow: ['127.0.81.0/24'] }) }),
    security: new TransportSecurity({ configured: () => 'opportunistic', reports }),
  });
  const sender = new TlsReportSender({
    reports, resolver, destinations: new DestinationPolicy({ allow: ['127.0.81.0/24'] }), ca: [],
    submitter: { organization: 'mtrelay.example', contact: 'postmaster@mtrelay.example', instance: 'deliverer-1' }, logger: pino({ level: 'silent' }),
    mailer: reportMailer(deliverer, store, 'tls-reports@mtrelay.example'),
  });
  try {
    assert.deepEqual(await sender.send(day), ['mailto:tlsrpt@reports.mailed.test']);
  } finally {
    pool.close();
  }
  const [mail] = await mailbox.waitFor('tlsrpt@reports.mailed.test');
  assert.equal(mail!.mailFrom, '', 'a null envelope sender: a report that bounces makes no bounce');
  assert.equal(await verifyDkim(mail!.message, dnsAddress), 'pass');
  const text = mail!.message.toString('latin1').replace(/\r\n[ \t]+/g, ' ');
  assert.match(text, /^Content-Type: multipart\/report; report-type="?tlsrpt"?;/m);
  assert.match(text, /^Subject: Report Domain: mailed\.test Submitter: mtrelay\.example Report-ID: <2026-11-28\.mailed\.test\.deliverer-1@mtrelay\.example>/m);
  assert.match(text, /^TLS-Report-Domain: mailed\.test\r$/m);
  assert.match(text, /^TLS-Report-Submitter: mtrelay\.example\r$/m);
  const structure = mimeParts(mail!.message);
  assert.deepEqual([structure.defects, ...structure.parts.map((p) => p.defects)].flat(), [], 'valid MIME');
  assert.deepEqual(structure.parts.map((p) => [p.type, p.cte]), [['text/plain', 'quoted-printable'], ['application/tlsrpt+gzip', 'base64']]);
  const attachment = (await simpleParser(mail!.message)).attachments.find((a) => a.contentType === 'application/tlsrpt+gzip');
  assert.ok(attachment, 'the report is attached as application/tlsrpt+gzip');
  const report = JSON.parse(gunzipSync(attachment.content).toString('utf8')) as { policies: { policy: Record<string, unknown>; summary: Record<string, number> }[] };
  assert.deepEqual(report.policies, [{ policy: { 'policy-type': 'tlsa', 'policy-string': ['3 1 1 00ff'], 'policy-domain': 'mailed.test' },
    summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 0 } }]);
});
