// One attempt through the real Deliverer and pool, in this process, against a sink on
// loopback: a sending domain whose key cannot sign delays its mail with mtrelay's own reply,
// and nothing reaches the mailbox unsigned.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import { Deliverer } from '../../deliverer/delivery.ts';
import { RouteResolver } from '../../deliverer/routes.ts';
import { SmtpPool } from '../../deliverer/smtp-pool.ts';
import { EMPTY_ATTRIBUTES } from '../../shared/attributes/x-mt-attr.ts';
import { compileConfig } from '../../shared/config/compiler.ts';
import { ConfigStore } from '../../shared/config/store.ts';
import { replyLine } from '../../shared/smtp-replies.ts';
import { freePort } from '../kafka/broker.ts';
import { sendingDomainYaml, signedDomainYaml } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { TransportSecurity } from '../../deliverer/transport-security/transport-security.ts';
import { TlsReports } from '../../deliverer/transport-security/tls-report.ts';

let sink: SmtpSink;
let pool: SmtpPool;
let deliverer: Deliverer;

before(async () => {
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  // A key whose PEM armour is right but whose body is not a key: the compiler lets it through.
  const damaged = 'apiVersion: v1\nkind: Secret\nmetadata: {name: broken-com-dkim, namespace: acme}\nstringData:\n  privateKey: |\n    -----BEGIN PRIVATE KEY-----\n    bm90IGEga2V5\n    -----END PRIVATE KEY-----\n';
  const store = new ConfigStore();
  store.apply(compileConfig([sendingDomainYaml('acme', 'broken-com', 'broken.com'), damaged, sendingDomainYaml('acme', 'keyless-com', 'keyless.com'),
    signedDomainYaml('mtrelay-system', 'sandbox', 'sandbox.test')]
    .flatMap((yaml) => parseAllDocuments(yaml).map((d) => ({ source: 'test.yaml', document: d.toJS() })))));
  pool = new SmtpPool({ connectionsPerDestination: 1, messagesPerConnection: 10, messagesPerSecond: 0, heloName: 'out.test', ca: [],
    connectTimeoutMs: 2000, socketTimeoutMs: 5000 });
  deliverer = new Deliverer({
    store, pool, isSuppressed: () => false, logger: pino({ level: 'silent' }),
    security: new TransportSecurity({ configured: () => 'opportunistic', reports: new TlsReports() }),
    routes: new RouteResolver({ routes: new Map([['*', { host: '127.0.0.1', port: sink.port }]]) }),
  });
});
after(async () => {
  pool.close();
  await sink.close();
});

const job = (domain: string) => ({
  attempt: 0,
  raw: Buffer.from(`From: a@${domain}\r\nTo: r@x.test\r\nSubject: s\r\n\r\nbody\r\n`),
  submission: {
    transmissionId: '7', namespace: 'acme', apiKeyId: 'acme/app', mailFrom: `a@${domain}`, rcptTo: ['r@x.test'], sendingDomain: domain,
    attributes: EMPTY_ATTRIBUTES, receivedAt: new Date().toISOString(), clientAddress: '192.0.2.1', tls: 'none',
  },
});

test('a key that cannot sign: a delay with DKIM_SIGNING_FAILED, and no unsigned copy is sent', async () => {
  const outcomes = await deliverer.attempt(job('broken.com'));
  assert.deepEqual(outcomes, [{
    rcptTo: 'r@x.test', rcptType: 'to', kind: 'deferred', ours: 'DKIM_SIGNING_FAILED', bounceClass: 25,
    reply: replyLine('DKIM_SIGNING_FAILED', { domain: 'broken.com', selector: 'mtrelay' }),
  }]);
  assert.equal(sink.received.length, 0);
});

test('no key at all (its Secret deleted after the relay accepted the message): a delay with DKIM_KEY_MISSING, never an unsigned copy', async () => {
  assert.deepEqual(await deliverer.attempt(job('keyless.com')), [{
    rcptTo: 'r@x.test', rcptType: 'to', kind: 'deferred', ours: 'DKIM_KEY_MISSING', bounceClass: 25,
    reply: '451 4.7.5 Sending domain keyless.com has no DKIM key; nothing is sent unsigned',
  }]);
  assert.equal(sink.received.length, 0);
});

test('the sandbox domain (claimed by the installer\'s namespace) signs the mail of any account with its own key', async () => {
  const { submission, ...rest } = job('sandbox.test');
  const [outcome] = await deliverer.attempt({ ...rest, submission: { ...submission, transmissionId: '8', sandbox: true } });
  assert.equal(outcome!.kind, 'delivered');
  const received = sink.received.at(-1)!;
  assert.match(received.message.toString(), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=sandbox\.test; s=mtrelay;/m);
});

test('a domain another namespace claims never signs an account\'s own (non-sandbox) mail: it waits with DKIM_KEY_MISSING', async () => {
  const { submission, ...rest } = job('sandbox.test');
  const [outcome] = await deliverer.attempt({ ...rest, submission: { ...submission, transmissionId: '9' } });
  assert.equal(outcome!.kind, 'deferred');
  assert.equal((outcome as { ours?: string }).ours, 'DKIM_KEY_MISSING');
});
