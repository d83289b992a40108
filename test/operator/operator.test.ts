// The operator end to end against a real API server, driven with the real kubectl: resources
// applied → Secrets and status → DNS verification against a real DNS server → a relay that
// watches the config Secret with a least-privilege service account accepts swaks AUTH with
// the generated key, and the record lands in Kafka; deletion, disabling, selector changes,
// Events, and leader hand-over between two replicas. The API server, the operator, a relay
// and the DNS server are shared; every test makes the resources it needs under its own names,
// so none depends on another having run.
// @needs k8s kafka processes swaks
// @limit 180s
import assert from 'node:assert/strict';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import type { KubeApiServer } from '../k8s/api-server.ts';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { DelivererProcess, MtrelayProcess, RelayProcess } from '../helpers/relay-process.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';
import { swaks, submitArgs } from '../helpers/swaks.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { createKafka } from '../../shared/kafka/client.ts';
import pino from 'pino';
import { randomUUID } from 'node:crypto';
import { OperatorCluster, SYSTEM, condition, eventually } from './cluster-fixture.ts';

let cluster: OperatorCluster;
let api: KubeApiServer;
let operator: MtrelayProcess;
/** The identity of the replica holding the Lease now (leadership tests hand it over). */
let leader = 'operator-a';
let relay: RelayProcess;
let reader: KafkaReader;

const getJson: OperatorCluster['getJson'] = (args) => cluster.getJson(args);
const apply = (lines: string[]) => cluster.apply(lines);
const publishRecords = (namespace: string, name: string) => cluster.publishRecords(namespace, name);
const apiKeyValue = (namespace: string, secret: string) => cluster.secretValue(namespace, secret);
const startOperator = (identity: string) => cluster.startOperator(identity);

function delivererDomain(domain: string): { dkimSelector: string; dkimPrivateKey?: string } | undefined {
  const data = getJson(['secret', '-n', SYSTEM, 'mtrelay-deliverer-config']).data!;
  const document = JSON.parse(gunzipSync(Buffer.from(data['config.json.gz']!, 'base64')).toString()) as
    { namespaces: Record<string, { domains: Record<string, { dkimSelector: string; dkimPrivateKey?: string }> }> };
  return document.namespaces.acme?.domains[domain];
}

/** A SendingDomain in namespace acme, its records published, Ready: in the config and sending. */
async function verifiedDomain(name: string, domain: string, selector = 's1'): Promise<void> {
  apply(['apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', `metadata: {name: ${name}, namespace: acme}`, `spec: {domain: ${domain}, dkim: {selector: ${selector}}}`]);
  await eventually(`${name} records in status`, () => (getJson(['sendingdomain', '-n', 'acme', name]).status as { dnsRecords?: unknown[] } | undefined)?.dnsRecords?.length);
  publishRecords('acme', name);
  await eventually(`${name} Ready`, () => condition(getJson(['sendingdomain', '-n', 'acme', name]).status, 'Ready')?.status === 'True');
}

/** An ApiKey in namespace acme with a key the operator generated, Ready; resolves with the key. */
async function generatedKey(name: string): Promise<string> {
  apply(['apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', `metadata: {name: ${name}, namespace: acme}`, 'spec: {permissions: [smtp/send]}']);
  await eventually(`${name} Ready`, () => condition(getJson(['apikey', '-n', 'acme', name]).status, 'Ready')?.status === 'True');
  return apiKeyValue('acme', `${name}-apikey`);
}

async function authReply(apiKey: string, port = relay.ports.submission): Promise<string | undefined> {
  const client = await RawSmtp.connect(port);
  await client.reply();
  const reply = await client.login(apiKey);
  client.close();
  return reply;
}

before(async () => {
  cluster = await OperatorCluster.start('operator');
  api = cluster.api;
  operator = await startOperator('operator-a');
  await operator.waitForLog((l) => l.msg === 'became the leader');
  reader = await KafkaReader.start(testKafka());
  // A relay that reads its config from the operator's Secret with its own service account.
  relay = await RelayProcess.start({
    kafka: testKafka(),
    args: ['--config-secret', `${SYSTEM}/mtrelay-relay-config`, '--kubeconfig', cluster.relayKubeconfig, '--allow-auth-without-tls'],
  });
});

after(async () => {
  await relay?.stop();
  await operator?.stop();
  await reader?.stop();
  await cluster?.stop();
});

describe('a domain and a key applied with kubectl', () => {
  test('get a DKIM key Secret, a generated API key Secret, DNS records and conditions in status', async () => {
    api.kubectl(['apply', '-f', '-'], [
      'apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', 'metadata: {name: acme-mail, namespace: acme}',
      'spec: {domain: mail.acme.test, dkim: {selector: s1}, trackingDomain: click.acme.test}', '---',
      'apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', 'metadata: {name: app, namespace: acme}', 'spec: {permissions: [smtp/send]}', '',
    ].join('\n'));
    const domain = await eventually('domain status', () => {
      const d = getJson(['sendingdomain', '-n', 'acme', 'acme-mail']);
      return condition(d.status, 'KeyReady')?.status === 'True' && d;
    });
    const records = (domain.status as { dnsRecords: { purpose: string; type: string; name: string; value: string; verified: boolean }[] }).dnsRecords;
    assert.deepEqual(records.map((r) => [r.purpose, r.type, r.name]),
      [['dkim', 'TXT', 's1._domainkey.mail.acme.test'], ['spf', 'TXT', 'mail.acme.test'], ['tracking', 'CNAME', 'click.acme.test'], ['dmarc', 'TXT', '_dmarc.mail.acme.test']]);
    assert.match(records[0]!.value, /^v=DKIM1; k=rsa; p=MII[A-Za-z0-9+/=]+$/);
    assert.equal(records[1]!.value, 'v=spf1 include:spf.mtrelay.test ~all');
    assert.equal(records[2]!.value, 'track.mtrelay.test');
    assert.equal(records[3]!.value, 'v=DMARC1; p=none');
    assert.equal(condition(domain.status, 'DMARCAligned')?.reason, 'DKIMRecordMissing', 'without its DKIM record the domain\'s mail would fail DMARC');
    assert.equal((domain.status as { feedbackLoopAddress?: string }).feedbackLoopAddress, 'fbl+mail.acme.test@bounces.mtrelay.test', 'the address to register with feedback loops');
    // Status is written by server-side apply, owned by the operator's field manager.
    const managed = JSON.parse(api.kubectl(['get', 'sendingdomain', '-n', 'acme', 'acme-mail', '-o', 'json', '--show-managed-fields'])) as
      { metadata: { managedFields: { manager: string; operation: string; subresource?: string }[] } };
    assert.ok(managed.metadata.managedFields.some((f) => f.manager === 'mtrelay-operator' && f.operation === 'Apply' && f.subresource === 'status'));
    assert.equal(condition(domain.status, 'DNSVerified')?.status, 'False');
    assert.equal(condition(domain.status, 'DNSVerified')?.reason, 'RecordsMissing');
    assert.equal(condition(domain.status, 'Ready')?.reason, 'AwaitingVerification');
    assert.equal(condition(domain.status, 'Ready')?.observedGeneration, 1);

    const dkimSecret = getJson<{ data: Record<string, string>; metadata: { ownerReferences: { kind: string; name: string }[] } }>(['secret', '-n', 'acme', 'acme-mail-dkim']);
    assert.match(Buffer.from(dkimSecret.data.privateKey!, 'base64').toString(), /^-----BEGIN PRIVATE KEY-----/);
    assert.deepEqual(dkimSecret.metadata.ownerReferences.map((o) => [o.kind, o.name]), [['SendingDomain', 'acme-mail']]);

    const key = await eventually('api key status', () => {
      const k = getJson(['apikey', '-n', 'acme', 'app']);
      return condition(k.status, 'Ready')?.status === 'True' && k;
    });
    const generated = apiKeyValue('acme', 'app-apikey');
    assert.match(generated, /^mt_[A-Za-z0-9_-]{43}$/);
    assert.equal((key.status as { prefix: string }).prefix, generated.slice(0, 6));
    assert.ok(!JSON.stringify(key.status).includes(generated.slice(6)), 'the key itself is not in status');
  });

  test('the relay config holds the key hash and no private key; the relay account cannot read the deliverer config', async () => {
    await verifiedDomain('hash-mail', 'hash.acme.test');
    const key = await generatedKey('hash-app');
    await eventuallyAuth(key, '235');
    const relayConfig = getJson(['secret', '-n', SYSTEM, 'mtrelay-relay-config']).data!;
    const deliverer = getJson(['secret', '-n', SYSTEM, 'mtrelay-deliverer-config']).data!;
    assert.ok(relayConfig['index.json'] && relayConfig['config.json.gz']);
    const relayText = gunzipSync(Buffer.from(relayConfig['config.json.gz']!, 'base64')).toString();
    assert.ok(relayText.includes('hash.acme.test') && relayText.includes('"id":"acme/hash-app"'));
    assert.ok(!relayText.includes('PRIVATE KEY'));
    assert.ok(!relayText.includes(key));
    assert.match(gunzipSync(Buffer.from(deliverer['config.json.gz']!, 'base64')).toString(), /PRIVATE KEY/);
    const kubectlAsRelay = (args: string[]) => api.kubectl(['--kubeconfig', cluster.relayKubeconfig, ...args]);
    assert.throws(() => kubectlAsRelay(['get', 'secret', '-n', SYSTEM, 'mtrelay-deliverer-config']), /Forbidden/);
    assert.throws(() => kubectlAsRelay(['get', 'secret', '-n', 'acme', 'hash-mail-dkim']), /Forbidden/);
    assert.throws(() => kubectlAsRelay(['get', 'secrets', '-n', SYSTEM]), /Forbidden/);
    assert.match(kubectlAsRelay(['get', 'secret', '-n', SYSTEM, 'mtrelay-relay-config', '-o', 'name']), /mtrelay-relay-config/);
  });

  test('a domain whose owner publishes every record but DMARC is Ready, and warned that Gmail and Yahoo want a DMARC record', async () => {
    apply(['apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', 'metadata: {name: nodmarc, namespace: acme}', 'spec: {domain: nodmarc.acme.test}']);
    await eventually('records in status', () => (getJson(['sendingdomain', '-n', 'acme', 'nodmarc']).status as { dnsRecords?: unknown[] } | undefined)?.dnsRecords?.length);
    const status = getJson(['sendingdomain', '-n', 'acme', 'nodmarc']).status as { dnsRecords: { purpose: string; type: string; name: string; value: string }[] };
    for (const record of status.dnsRecords.filter((r) => r.purpose !== 'dmarc')) cluster.dns.set(record.name, { TXT: [record.value] });
    const domain = await eventually('the domain Ready without DMARC', () => {
      const d = getJson(['sendingdomain', '-n', 'acme', 'nodmarc']);
      return condition(d.status, 'Ready')?.status === 'True' && condition(d.status, 'DMARCAligned')?.reason === 'DMARCRecordMissing' && d;
    });
    assert.equal(condition(domain.status, 'DMARCAligned')?.status, 'False');
    assert.match(condition(domain.status, 'DMARCAligned')?.message ?? '', /publish TXT _dmarc\.nodmarc\.acme\.test "v=DMARC1; p=none"/);
    const reasons = () => api.kubectl(['get', 'events', '-n', 'acme', '--field-selector', 'involvedObject.kind=SendingDomain,involvedObject.name=nodmarc', '-o', 'jsonpath={.items[*].reason}']);
    await eventually('a Warning event', () => /DMARCRecordMissing/.test(reasons()), 20_000);
    // Any DMARC record of the owner's own will do.
    cluster.dns.set('_dmarc.nodmarc.acme.test', { TXT: ['v=DMARC1; p=quarantine; rua=mailto:dmarc@nodmarc.acme.test'] });
    await eventually('aligned once a DMARC record is published', () => condition(getJson(['sendingdomain', '-n', 'acme', 'nodmarc']).status, 'DMARCAligned')?.reason === 'Aligned', 20_000);
    assert.ok(await operator.metric('mtrelay_operator_resources', { kind: 'SendingDomain', condition: 'DMARCAligned', status: 'True' }) >= 1);
  });

  test('once the DKIM record is published the domain is verified, and the relay accepts mail From it', async () => {
    apply(['apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', 'metadata: {name: news-mail, namespace: acme}', 'spec: {domain: news.acme.test}']);
    const key = await generatedKey('news-app');
    await eventually('records in status', () => (getJson(['sendingdomain', '-n', 'acme', 'news-mail']).status as { dnsRecords?: unknown[] } | undefined)?.dnsRecords?.length);
    await eventuallyAuth(key, '235');
    const unverified = await swaks(submitArgs({ port: relay.ports.submission, key, from: 'news@news.acme.test', tls: 'none' }));
    assert.match(unverified.dataReply ?? '', /^550 5\.7\.1 Unconfigured Sending Domain <news\.acme\.test>/, 'not before its records are found');
    publishRecords('acme', 'news-mail');
    const domain = await eventually('domain verified', () => {
      const d = getJson(['sendingdomain', '-n', 'acme', 'news-mail']);
      return condition(d.status, 'Ready')?.status === 'True' && d;
    });
    assert.equal(condition(domain.status, 'DNSVerified')?.status, 'True');
    assert.equal(condition(domain.status, 'DMARCAligned')?.reason, 'Aligned');
    assert.ok((domain.status as { verifiedAt?: string }).verifiedAt);
    assert.ok((domain.status as { dnsRecords: { verified: boolean }[] }).dnsRecords.every((r) => r.verified));

    const deadline = Date.now() + 10_000;
    let result = await swaks(submitArgs({ port: relay.ports.submission, key, from: 'news@news.acme.test', tls: 'none' }));
    while (!/^250 /.test(result.dataReply ?? '') && Date.now() < deadline) { // the relay's config follows the operator's write
      await new Promise((r) => setTimeout(r, 200));
      result = await swaks(submitArgs({ port: relay.ports.submission, key, from: 'news@news.acme.test', tls: 'none' }));
    }
    assert.match(result.dataReply ?? result.output, /^250 2\.0\.0 OK (\d+)/, result.output);
    const transmission = /^250 2\.0\.0 OK (\d+)/.exec(result.dataReply!)![1]!;
    const record = await reader.waitFor(transmission);
    assert.equal(reader.header(record, 'mtrelay-namespace'), 'acme');
    assert.equal(reader.header(record, 'mtrelay-api-key-id'), 'acme/news-app');

    const refused = await swaks(submitArgs({ port: relay.ports.submission, key, from: 'news@unverified.acme.test', tls: 'none' }));
    assert.match(refused.dataReply ?? '', /^550 5\.7\.1 Unconfigured Sending Domain <unverified\.acme\.test>/);
  });

  test('the deliverer loads its config with its own service account and becomes ready', async () => {
    await verifiedDomain('deliverer-mail', 'deliverer.acme.test');
    const kubeconfig = api.kubeconfigWithToken(api.serviceAccountToken(SYSTEM, 'mtrelay-deliverer'), path.join(api.dir, 'deliverer.kubeconfig'));
    const deliverer = await DelivererProcess.start({ kafka: testKafka(), args: ['--config-secret', `${SYSTEM}/mtrelay-deliverer-config`, '--kubeconfig', kubeconfig, '--group-id', 'operator-test'] });
    try {
      const loaded = await deliverer.waitForLog((l) => l.msg === 'config loaded');
      assert.ok(Number(loaded.namespaces) >= 1, JSON.stringify(loaded));
      await deliverer.waitUntilReady();
    } finally {
      assert.equal(await deliverer.stop(), 0);
    }
  });

  test('kubectl delete apikey: AUTH fails on every relay within 5 seconds', async () => {
    const second = await RelayProcess.start({
      kafka: testKafka(),
      args: ['--config-secret', `${SYSTEM}/mtrelay-relay-config`, '--kubeconfig', cluster.relayKubeconfig, '--allow-auth-without-tls'],
    });
    try {
      const key = await generatedKey('doomed');
      for (const port of [relay.ports.submission, second.ports.submission]) {
        await eventuallyAuth(key, '235', port);
      }
      const started = Date.now();
      api.kubectl(['delete', 'apikey', '-n', 'acme', 'doomed']);
      for (const port of [relay.ports.submission, second.ports.submission]) {
        for (;;) {
          const reply = await authReply(key, port);
          if (reply?.startsWith('535 5.7.8')) break;
          assert.ok(Date.now() - started < 5000, `AUTH on port ${port} still answers "${reply}" ${Date.now() - started} ms after the delete`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      await second.stop();
    }
  });

  test('a relay whose config Secret it cannot read starts, says why, and is not ready', async () => {
    const blind = new MtrelayProcess(['relay', '--config-secret', `${SYSTEM}/mtrelay-deliverer-config`, '--kubeconfig', cluster.relayKubeconfig,
      '--kafka', testKafka(), '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1',
      '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--partitions', '2']);
    try {
      blind.metricsPort = (await blind.started('relay listening')).metricsPort as number;
      const forbidden = await blind.waitForLog((l) => l.msg === 'informer list failed; retrying');
      assert.match(JSON.stringify(forbidden), /403 Forbidden.*cannot list resource \\"secrets\\"/);
      assert.ok(blind.logs.some((l) => l.msg === 'no config loaded yet (Secret missing or not readable); not ready until it is'));
      const ready = await blind.http('/readyz');
      assert.equal(ready.status, 503);
      assert.match(ready.body, /no config loaded/);
    } finally {
      await blind.stop();
    }
  });

  test('a user-supplied key: disabled and expired keys say why in status and fail AUTH', async () => {
    const key = `mt_${'u'.repeat(10)}${Date.now()}abcdefghij`;
    api.kubectl(['create', 'secret', 'generic', 'own-key', '-n', 'acme', `--from-literal=apiKey=${key}`]);
    const apply = (extra: string) => api.kubectl(['apply', '-f', '-'], [
      'apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', 'metadata: {name: own, namespace: acme}',
      `spec: {permissions: [smtp/send], secretRef: {name: own-key}${extra}}`, ''].join('\n'));
    apply('');
    // A Secret mtrelay may use carries its label; without it the key is refused, and status says how to fix it.
    const unlabelled = await eventually('unlabelled Secret reported', () => {
      const c = condition(getJson(['apikey', '-n', 'acme', 'own']).status, 'Ready');
      return c?.reason === 'SecretNotLabelled' && c;
    });
    assert.match(unlabelled.message, /kubectl label secret -n acme own-key mtrelay\.dev\/secret=api-key/);
    api.kubectl(['label', 'secret', '-n', 'acme', 'own-key', 'mtrelay.dev/secret=api-key']);
    await eventually('own key Ready', () => condition(getJson(['apikey', '-n', 'acme', 'own']).status, 'Ready')?.status === 'True');
    await eventuallyAuth(key, '235');
    apply(', disabled: true');
    const disabled = await eventually('disabled', () => condition(getJson(['apikey', '-n', 'acme', 'own']).status, 'Ready'));
    await eventually('reason Disabled', () => condition(getJson(['apikey', '-n', 'acme', 'own']).status, 'Ready')?.reason === 'Disabled');
    assert.ok(disabled);
    await eventuallyAuth(key, '535');
    const soon = new Date(Date.now() + 2500).toISOString();
    apply(`, expiresAt: "${soon}"`);
    await eventuallyAuth(key, '235');
    await eventually('reason Expired', () => condition(getJson(['apikey', '-n', 'acme', 'own']).status, 'Ready')?.reason === 'Expired', 10_000);
    assert.match((await authReply(key)) ?? '', /^535/);

    api.kubectl(['apply', '-f', '-'], ['apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', 'metadata: {name: missing, namespace: acme}',
      'spec: {permissions: [smtp/send], secretRef: {name: no-such-secret}}', ''].join('\n'));
    const missing = await eventually('missing secret reported', () => {
      const c = condition(getJson(['apikey', '-n', 'acme', 'missing']).status, 'Ready');
      return c?.reason === 'SecretNotFound' && c;
    });
    assert.match(missing.message, /Secret acme\/no-such-secret not found/);
  });

  test('changing the DKIM selector: a new key, new records, and Events that kubectl describe shows', async () => {
    await verifiedDomain('sel-mail', 'sel.acme.test');
    await eventually('deliverer config signs with s1', () => delivererDomain('sel.acme.test')?.dkimSelector === 's1');
    const before = getJson(['secret', '-n', 'acme', 'sel-mail-dkim']).data!.privateKey;
    api.kubectl(['patch', 'sendingdomain', '-n', 'acme', 'sel-mail', '--type', 'merge', '-p', '{"spec":{"dkim":{"selector":"s2"}}}']);
    const domain = await eventually('new selector in status', () => {
      const d = getJson(['sendingdomain', '-n', 'acme', 'sel-mail']);
      return (d.status as { dkim?: { selector: string } }).dkim?.selector === 's2' && d;
    });
    const after = getJson(['secret', '-n', 'acme', 'sel-mail-dkim']).data!;
    assert.notEqual(after.privateKey, before);
    assert.equal(after.previousPrivateKey, before, 'the old key is kept while the new record is not in DNS');
    // Meanwhile mail is still signed with the old selector, whose record is published.
    assert.equal((domain.status as { dkim: { signingSelector?: string } }).dkim.signingSelector, 's1');
    await eventually('deliverer config signs with s1', () => delivererDomain('sel.acme.test')?.dkimSelector === 's1'
      && delivererDomain('sel.acme.test')?.dkimPrivateKey === Buffer.from(before!, 'base64').toString().trim() + '\n');
    const records = (domain.status as { dnsRecords: { name: string; value: string; verified: boolean }[] }).dnsRecords;
    assert.equal(records[0]!.name, 's2._domainkey.sel.acme.test');
    assert.equal(records[0]!.verified, false);
    assert.equal(condition(domain.status, 'DNSVerified')?.status, 'False');
    assert.equal(condition(domain.status, 'DNSVerified')?.observedGeneration, 2);
    // Ownership stays proven, so sending goes on while the new record is published.
    assert.equal(condition(domain.status, 'Ready')?.status, 'True');
    publishRecords('acme', 'sel-mail');
    await eventually('verified again', () => condition(getJson(['sendingdomain', '-n', 'acme', 'sel-mail']).status, 'DNSVerified')?.status === 'True');
    await eventually('deliverer config signs with s2', () => delivererDomain('sel.acme.test')?.dkimSelector === 's2');
    assert.equal(getJson(['secret', '-n', 'acme', 'sel-mail-dkim']).data!.previousPrivateKey, undefined, 'the old key is gone');
    const described = await eventually('events', () => {
      const text = api.kubectl(['describe', 'sendingdomain', '-n', 'acme', 'sel-mail']);
      return /KeyRotated/.test(text) && text;
    });
    assert.match(described, /KeyGenerated\s+.*generated a 2048-bit DKIM key for selector s1/);
    assert.match(described, /KeyRotated\s+.*new 2048-bit DKIM key for selector s2/);
    assert.match(described, /OwnershipVerified/);
    assert.match(described, /PreviousKeyRetired/);
  });

  test('a second selector change mid-rotation keeps the published key signing; changing back cancels the rotation', async () => {
    const patchSelector = (selector: string) => api.kubectl(['patch', 'sendingdomain', '-n', 'acme', 'rot', '--type', 'merge', '-p', JSON.stringify({ spec: { dkim: { selector } } })]);
    api.kubectl(['apply', '-f', '-'], ['apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', 'metadata: {name: rot, namespace: acme}',
      'spec: {domain: rot.acme.test, dkim: {selector: r1}}', ''].join('\n'));
    await eventually('records in status', () => (getJson(['sendingdomain', '-n', 'acme', 'rot']).status as { dnsRecords?: unknown[] } | undefined)?.dnsRecords?.length);
    publishRecords('acme', 'rot');
    await eventually('signing with r1', () => delivererDomain('rot.acme.test')?.dkimSelector === 'r1');
    const published = delivererDomain('rot.acme.test')!.dkimPrivateKey;
    const signing = () => delivererDomain('rot.acme.test');
    patchSelector('r2');
    await eventually('r2 key made', () => (getJson(['sendingdomain', '-n', 'acme', 'rot']).status as { dkim: { selector: string } }).dkim.selector === 'r2');
    patchSelector('r3');
    await eventually('r3 key made', () => (getJson(['sendingdomain', '-n', 'acme', 'rot']).status as { dkim: { selector: string } }).dkim.selector === 'r3');
    // A change made now compiles the config again, after the r3 key was written: it still signs with r1.
    const configRuns = await operator.metric('mtrelay_operator_reconciles_total', { kind: 'Config', result: 'success' });
    api.kubectl(['annotate', 'sendingdomain', '-n', 'acme', 'rot', `test/touched=${Date.now()}`, '--overwrite']);
    const rebuilt = Date.now() + 10_000;
    while (await operator.metric('mtrelay_operator_reconciles_total', { kind: 'Config', result: 'success' }) <= configRuns) {
      assert.ok(Date.now() < rebuilt, 'the config was not compiled again after the r3 key');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(signing()?.dkimSelector, 'r1', 'the published selector keeps signing');
    assert.equal(signing()?.dkimPrivateKey, published, 'with the published key');
    patchSelector('r1');
    await eventually('rotation cancelled', () => /RotationCancelled/.test(api.kubectl(['describe', 'sendingdomain', '-n', 'acme', 'rot'])));
    const secret = getJson(['secret', '-n', 'acme', 'rot-dkim']).data!;
    assert.equal(secret.previousPrivateKey, undefined);
    assert.equal(Buffer.from(secret.privateKey!, 'base64').toString().trim() + '\n', published);
    await eventually('verified on r1 again', () => condition(getJson(['sendingdomain', '-n', 'acme', 'rot']).status, 'DNSVerified')?.status === 'True');
    assert.equal(signing()?.dkimSelector, 'r1');
  });

  test('a Webhook: its target, credentials and signing secret reach the dispatcher\'s config only; a missing Secret is reported', async () => {
    api.kubectl(['create', 'secret', 'generic', 'hook-signing', '-n', 'acme', '--from-literal=secret=s3cr3t-signing-key']);
    api.kubectl(['label', 'secret', '-n', 'acme', 'hook-signing', 'mtrelay.dev/secret=webhook']);
    api.kubectl(['create', 'secret', 'generic', 'hook-token', '-n', 'acme', '--from-literal=token=b3arer']);
    api.kubectl(['label', 'secret', '-n', 'acme', 'hook-token', 'mtrelay.dev/secret=webhook']);
    // A Secret without the label is refused: naming it must not be a way to send it somewhere.
    api.kubectl(['create', 'secret', 'generic', 'someone-elses', '-n', 'acme', '--from-literal=token=not-for-webhooks']);
    const hook = (name: string, token: string, signing: string) => api.kubectl(['apply', '-f', '-'], ['apiVersion: mtrelay.dev/v1alpha1', 'kind: Webhook',
      `metadata: {name: ${name}, namespace: acme}`,
      `spec: {url: "https://hooks.acme.test/${name}", events: [bounce, delivery], auth: {type: bearer, secretRef: {name: ${token}}}, signing: {secretRef: {name: ${signing}}}}`, ''].join('\n'));
    hook('events', 'hook-token', 'hook-signing');
    hook('broken', 'hook-token', 'no-such-secret');
    hook('sneaky', 'someone-elses', 'hook-signing');
    await eventually('webhook Ready', () => condition(getJson(['webhook', '-n', 'acme', 'events']).status, 'Ready')?.status === 'True');
    const broken = await eventually('broken webhook reported', () => {
      const c = condition(getJson(['webhook', '-n', 'acme', 'broken']).status, 'Ready');
      return c?.reason === 'SecretNotFound' && c;
    });
    assert.match(broken.message, /Secret acme\/no-such-secret not found/);
    await eventually('unlabelled webhook Secret refused', () => condition(getJson(['webhook', '-n', 'acme', 'sneaky']).status, 'Ready')?.reason === 'SecretNotLabelled');
    const config = (name: string) => JSON.parse(gunzipSync(Buffer.from(getJson(['secret', '-n', SYSTEM, name]).data!['config.json.gz']!, 'base64')).toString()) as
      { namespaces: Record<string, { domains: object; webhooks?: object[] }>; apiKeys: object[] };
    const dispatched = await eventually('webhook in the dispatcher config', () => config('mtrelay-dispatcher-config').namespaces.acme?.webhooks);
    assert.deepEqual(dispatched, [{ name: 'events', url: 'https://hooks.acme.test/events', events: ['bounce', 'delivery'], auth: { type: 'bearer', token: 'b3arer' }, signingSecret: 's3cr3t-signing-key' }]);
    // The dispatcher's config holds nothing else: no domains (no private keys), no API keys.
    assert.deepEqual(config('mtrelay-dispatcher-config').namespaces.acme?.domains, {});
    assert.deepEqual(config('mtrelay-dispatcher-config').apiKeys, []);
    assert.equal(config('mtrelay-relay-config').namespaces.acme?.webhooks, undefined);
    assert.equal(config('mtrelay-deliverer-config').namespaces.acme?.webhooks, undefined);
    assert.deepEqual(config('mtrelay-deliverer-config').apiKeys, []);
  });

  test('a dispatcher with its own service account: reads only its config, posts the account\'s events, and writes the Webhook\'s delivery status', async () => {
    const receiver = new WebhookReceiver();
    await receiver.listen();
    const kubectlAsDispatcher = (args: string[]) => api.kubectl(['--kubeconfig', cluster.dispatcherKubeconfig, ...args]);
    assert.throws(() => kubectlAsDispatcher(['get', 'secret', '-n', SYSTEM, 'mtrelay-deliverer-config']), /Forbidden/);
    assert.throws(() => kubectlAsDispatcher(['get', 'secret', '-n', 'acme', 'hook-token']), /Forbidden/);
    apply(['apiVersion: mtrelay.dev/v1alpha1', 'kind: Webhook', 'metadata: {name: local, namespace: acme}',
      `spec: {url: "${receiver.url('/local')}", allowInsecureUrl: true, events: [delivery]}`]);
    const dispatcher = new MtrelayProcess(['dispatcher', '--webhook-allow-private', '--config-secret', `${SYSTEM}/mtrelay-dispatcher-config`, '--kubeconfig', cluster.dispatcherKubeconfig,
      '--kafka', testKafka(), '--group-id', `operator-test-${randomUUID()}`, '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--batch-linger', '100ms']);
    const producer = createKafka({ connection: { brokers: [testKafka()] }, clientId: 'operator-test', logger: pino({ level: 'silent' }) }).producer();
    try {
      const ready = await dispatcher.started('dispatcher running');
      dispatcher.metricsPort = ready.metricsPort as number;
      await dispatcher.waitUntilReady();
      await receiver.waitFor((r) => r.batches.some((b) => b.path === '/local')); // the test batch of a new webhook
      await producer.connect();
      const event = { type: 'delivery', event_id: randomUUID(), timestamp: new Date().toISOString(), namespace: 'acme', transmission_id: '42', rcpt_to: 'a@x.test' };
      await producer.send({ topic: 'mtrelay.events', messages: [{ key: '42', value: JSON.stringify(event) }] });
      await receiver.waitFor((r) => r.events().some((e) => e.event_id === event.event_id));
      const delivery = await eventually('status.delivery written', () => {
        const status = getJson(['webhook', '-n', 'acme', 'local']).status as { delivery?: { lastSuccessAt?: string; lastTest?: { result: string } } } | undefined;
        return status?.delivery?.lastSuccessAt ? status.delivery : undefined;
      }, 20_000);
      assert.match(delivery.lastTest!.result, /^ok \(HTTP 200\)$/);
      assert.equal(condition(getJson(['webhook', '-n', 'acme', 'local']).status, 'Ready')?.status, 'True', 'the operator\'s condition is untouched');
      assert.match(api.kubectl(['get', 'webhook', '-n', 'acme', 'local']), /local\s+http:\/\/127\.0\.0\.1:\d+\/local\s+True\s+\d+s/);

      // The receiver fails: status says since when and why, and kubectl describe tells the story.
      receiver.status = 503;
      await producer.send({ topic: 'mtrelay.events', messages: [{ key: '43', value: JSON.stringify({ ...event, event_id: randomUUID(), transmission_id: '43' }) }] });
      const failing = await eventually('failing in status', () => {
        const d = (getJson(['webhook', '-n', 'acme', 'local']).status as { delivery?: { failingSince?: string; lastFailure?: string } }).delivery;
        return d?.failingSince ? d : undefined;
      }, 20_000);
      assert.equal(failing.lastFailure, 'HTTP 503');
      receiver.status = 200;
      await eventually('recovered in status', () => (getJson(['webhook', '-n', 'acme', 'local']).status as { delivery?: { failingSince?: string | null } }).delivery?.failingSince === undefined, 30_000);
      const reasons = () => api.kubectl(['get', 'events', '-n', 'acme', '--field-selector', 'involvedObject.kind=Webhook,involvedObject.name=local', '-o', 'jsonpath={.items[*].reason}']);
      await eventually('events on the Webhook', () => /DeliveryFailing/.test(reasons()) && /DeliveryRecovered/.test(reasons()), 20_000);
      assert.match(api.kubectl(['describe', 'webhook', '-n', 'acme', 'local']), /Warning\s+DeliveryFailing\s+.*mtrelay-dispatcher\s+posts to the webhook fail \(HTTP 503\)/);
    } finally {
      await producer.disconnect();
      await dispatcher.stop();
      await receiver.close();
    }
  });

  test('AccountSettings: the account\'s tracking and unsubscribe defaults reach the deliverer\'s config, and follow a change', async () => {
    api.kubectl(['apply', '-f', '-'], ['apiVersion: mtrelay.dev/v1alpha1', 'kind: AccountSettings', 'metadata: {name: default, namespace: acme}',
      'spec: {tracking: {opens: true, clicks: true, domain: t.acme.test}}', ''].join('\n'));
    const config = (name: string) => JSON.parse(gunzipSync(Buffer.from(getJson(['secret', '-n', SYSTEM, name]).data!['config.json.gz']!, 'base64')).toString()) as
      { namespaces: Record<string, { settings?: object }> };
    const settings = await eventually('settings in the deliverer config', () => config('mtrelay-deliverer-config').namespaces.acme?.settings);
    assert.deepEqual(settings, { openTracking: true, clickTracking: true, trackingDomain: 't.acme.test' });
    api.kubectl(['patch', 'accountsettings', '-n', 'acme', 'default', '--type=merge', '-p', '{"spec":{"tracking":{"clicks":false}}}']);
    await eventually('settings changed', () => (config('mtrelay-deliverer-config').namespaces.acme?.settings as { clickTracking?: boolean } | undefined)?.clickTracking === false);
    // The CRD's default (true) writes nothing; turning one-click unsubscribe off reaches the deliverer.
    assert.equal((config('mtrelay-deliverer-config').namespaces.acme?.settings as { listUnsubscribe?: boolean }).listUnsubscribe, undefined);
    api.kubectl(['patch', 'accountsettings', '-n', 'acme', 'default', '--type=merge', '-p', '{"spec":{"listUnsubscribe":false}}']);
    await eventually('listUnsubscribe off', () => (config('mtrelay-deliverer-config').namespaces.acme?.settings as { listUnsubscribe?: boolean } | undefined)?.listUnsubscribe === false);
  });

  test('a sending domain\'s tracking domain is used only once its CNAME to the tracker is found', async () => {
    apply(['apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', 'metadata: {name: tracked-mail, namespace: acme}',
      'spec: {domain: tracked.acme.test, dkim: {selector: s1}, trackingDomain: click.tracked.acme.test}']);
    const records = await eventually('records in status', () => (getJson(['sendingdomain', '-n', 'acme', 'tracked-mail']).status as
      { dnsRecords?: { type: string; name: string; value: string }[] } | undefined)?.dnsRecords);
    for (const r of records.filter((r) => r.type === 'TXT')) cluster.dns.set(r.name, { TXT: [r.value] });
    await eventually('Ready on DKIM alone', () => condition(getJson(['sendingdomain', '-n', 'acme', 'tracked-mail']).status, 'Ready')?.status === 'True');
    const domain = () => (JSON.parse(gunzipSync(Buffer.from(getJson(['secret', '-n', SYSTEM, 'mtrelay-deliverer-config']).data!['config.json.gz']!, 'base64')).toString()) as
      { namespaces: Record<string, { domains: Record<string, { trackingDomain?: string }> }> }).namespaces.acme?.domains['tracked.acme.test'];
    await eventually('domain in the config', () => domain());
    assert.equal(domain()!.trackingDomain, undefined, 'no CNAME yet: its links would lead nowhere');
    const cname = records.find((r) => r.type === 'CNAME')!;
    cluster.dns.set(cname.name, { CNAME: cname.value });
    await eventually('tracking domain once its CNAME is found', () => domain()?.trackingDomain === 'click.tracked.acme.test');
  });

  test('a domain claimed by a second namespace stays out of the config', async () => {
    await verifiedDomain('claimed-mail', 'claimed.acme.test');
    api.kubectl(['create', 'namespace', 'other']);
    api.kubectl(['apply', '-f', '-'], ['apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', 'metadata: {name: copycat, namespace: other}',
      'spec: {domain: claimed.acme.test}', ''].join('\n'));
    const ready = await eventually('claim reported', () => {
      const c = condition(getJson(['sendingdomain', '-n', 'other', 'copycat']).status, 'Ready');
      return c?.reason === 'DomainClaimed' && c;
    });
    assert.equal(ready.message, 'claimed.acme.test is already in use by another account');
  });
});

async function eventuallyAuth(key: string, code: string, port = relay.ports.submission): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const reply = await authReply(key, port);
    if (reply?.startsWith(code)) return;
    if (Date.now() > deadline) throw new Error(`AUTH answers "${reply}", expected ${code}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('metrics and leadership', () => {
  test('the operator reports reconciles, queue depth, resources by condition and leadership', async () => {
    await verifiedDomain('metrics-mail', 'metrics.acme.test');
    assert.equal(await operator.metric('mtrelay_operator_leader'), 1);
    assert.ok(await operator.metric('mtrelay_operator_reconciles_total', { kind: 'SendingDomain', result: 'success' }) > 0);
    assert.ok(await operator.metric('mtrelay_operator_reconciles_total', { kind: 'Config', result: 'success' }) > 0);
    assert.ok(await operator.metric('mtrelay_operator_resources', { kind: 'SendingDomain', condition: 'Ready', status: 'True' }) >= 1);
    assert.ok(await operator.metric('mtrelay_operator_config_writes_total', { view: 'relay' }) >= 1);
    const { body } = await operator.http('/metrics');
    assert.match(body, /mtrelay_operator_queue_depth\{kind="ApiKey"\} 0/);
    assert.match(body, /mtrelay_operator_reconcile_seconds_bucket/);
  });

  test('a second replica waits; only the leader writes; when the leader stops, the other takes over', async () => {
    const standby = await startOperator('operator-b');
    try {
      await standby.waitForLog((l) => l.msg === 'standing by: another replica holds the Lease' && l.holder === leader, 10_000);
      assert.equal(await standby.metric('mtrelay_operator_leader'), 0);
      assert.equal(await standby.metric('mtrelay_operator_reconciles_total', { kind: 'Config', result: 'success' }), 0);
      const lease = getJson<{ spec: { holderIdentity: string } }>(['lease', '-n', SYSTEM, 'mtrelay-operator']);
      assert.equal(lease.spec.holderIdentity, leader);

      const handover = Date.now();
      assert.equal(await operator.stop(), 0);
      await standby.waitForLog((l) => l.msg === 'became the leader', 10_000);
      assert.ok(Date.now() - handover < 5000, `hand-over took ${Date.now() - handover} ms`);
      assert.equal(getJson<{ spec: { holderIdentity: string } }>(['lease', '-n', SYSTEM, 'mtrelay-operator']).spec.holderIdentity, 'operator-b');

      // The new leader does the work: a new key authenticates on the relay.
      api.kubectl(['apply', '-f', '-'], ['apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', 'metadata: {name: after-handover, namespace: acme}',
        'spec: {permissions: [smtp/send]}', ''].join('\n'));
      const key = await eventually('key generated by the new leader', () => apiKeyValue('acme', 'after-handover-apikey'));
      await eventuallyAuth(key, '235');
      assert.equal(await standby.metric('mtrelay_operator_leader'), 1);
    } finally {
      operator = standby; // stopped in after()
      leader = 'operator-b';
    }
  });

  test('a leader killed without warning: a standby takes over once the Lease expires, not before', async () => {
    const standby = await startOperator('operator-c');
    try {
      await standby.waitForLog((l) => l.msg === 'standing by: another replica holds the Lease', 10_000);
      assert.equal(await standby.metric('mtrelay_operator_leader'), 0);
      const killed = Date.now();
      operator.child.kill('SIGKILL'); // no release: the Lease must run out (4 s here)
      await operator.exited;
      await standby.waitForLog((l) => l.msg === 'became the leader', 15_000);
      const took = Date.now() - killed;
      assert.ok(took >= 3000, `took over after ${took} ms, before the Lease could have expired`);
      assert.ok(took < 8000, `took over after ${took} ms`);
      assert.equal(getJson<{ spec: { holderIdentity: string; leaseTransitions: number } }>(['lease', '-n', SYSTEM, 'mtrelay-operator']).spec.holderIdentity, 'operator-c');
    } finally {
      operator = standby;
      leader = 'operator-c';
    }
  });
});
