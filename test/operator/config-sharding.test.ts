// The compiled config for 5,000 domains and 5,000 keys, written by the config controller to
// a real API server and read back by the relay's and the deliverer's Secret sources with
// their least-privilege service accounts: every Secret stays under the 1 MiB object limit,
// nothing is written when nothing changed, and pieces no longer needed are removed.
// (The 10,000 input resources are handed to the controller as in-memory caches: creating
// them through the API server would only test the API server.)
// @needs k8s
// @limit 75s
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { ConfigController } from '../../operator/config-controller.ts';
import { EventRecorder } from '../../shared/kube/events.ts';
import { createOperatorMetrics } from '../../operator/metrics.ts';
import { paths, type ApiKeyObject, type SecretObject, type SendingDomainObject } from '../../operator/resources.ts';
import { Registry } from 'prom-client';
import { delivererView, relayView, withTicketKey } from '../../shared/config/compiled-config.ts';
import { readConfigIndex } from '../../shared/config/config-secrets.ts';
import { SecretConfigSource } from '../../shared/config/secret-source.ts';
import { ConfigStore } from '../../shared/config/store.ts';
import { KubeClient, loadKubeConfig } from '../../shared/kube/client.ts';
import { Informer } from '../../shared/kube/informer.ts';
import { repoRoot } from '../kafka/broker.ts';
import type { KubeApiServer } from '../k8s/api-server.ts';
import { startTestApiServer } from './api-server-fixture.ts';

const SYSTEM = 'mtrelay-system';
const COUNT = 5000;
const logger = pino({ level: 'warn' });
let api: KubeApiServer;
let systemSecrets: Informer<SecretObject>;
const stops: (() => unknown)[] = [];

/** A cache with the two methods controllers use, over a fixed list. */
function memoryCache<T extends { metadata: { name: string; namespace: string } }>(items: T[]) {
  const byKey = new Map(items.map((i) => [`${i.metadata.namespace}/${i.metadata.name}`, i]));
  return {
    items,
    get: (name: string, namespace?: string) => byKey.get(`${namespace}/${name}`),
    list: (namespace?: string) => (namespace ? items.filter((i) => i.metadata.namespace === namespace) : items),
    /** Removes the matching items and returns them (to add back). */
    remove(predicate: (i: T) => boolean): T[] {
      const removed = items.filter(predicate);
      for (const item of removed) byKey.delete(`${item.metadata.namespace}/${item.metadata.name}`);
      items.splice(0, items.length, ...items.filter((i) => !predicate(i)));
      return removed;
    },
    add(added: T[]) {
      for (const item of added) byKey.set(`${item.metadata.namespace}/${item.metadata.name}`, item);
      items.push(...added);
    },
  };
}

const meta = (namespace: string, name: string, i: number) => ({
  name, namespace, uid: `uid-${name}-${namespace}`, generation: 1, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
});

/** Random key material of a real 2048-bit PKCS#8 key's size, so compression is realistic. */
const pseudoPem = () => `-----BEGIN PRIVATE KEY-----\n${randomBytes(1218).toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
const b64 = (s: string) => Buffer.from(s).toString('base64');

const domains = memoryCache<SendingDomainObject>([]);
const apiKeys = memoryCache<ApiKeyObject>([]);
const tenantSecrets = memoryCache<SecretObject>([]);
for (let i = 0; i < COUNT; i++) {
  const namespace = `account-${i % 50}`;
  domains.items.push({
    apiVersion: 'mtrelay.dev/v1alpha1', kind: 'SendingDomain', metadata: meta(namespace, `domain-${i}`, i), spec: { domain: `mail${i}.tenant${i % 50}.test` },
    status: { verifiedAt: '2026-01-01T00:00:00Z', conditions: [{ type: 'KeyReady', status: 'True', reason: 'KeyGenerated', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
  });
  tenantSecrets.items.push({ apiVersion: 'v1', kind: 'Secret', metadata: meta(namespace, `domain-${i}-dkim`, i), data: { privateKey: b64(pseudoPem()) } });
  apiKeys.items.push({ apiVersion: 'mtrelay.dev/v1alpha1', kind: 'ApiKey', metadata: meta(namespace, `key-${i}`, i), spec: { permissions: ['smtp/send'], secretRef: { name: `key-${i}` } } });
  tenantSecrets.items.push({ apiVersion: 'v1', kind: 'Secret', metadata: meta(namespace, `key-${i}`, i), data: { apiKey: b64(`mt_${randomBytes(32).toString('base64url')}`) } });
}
// Rebuild the indexes after filling the lists.
const domainCache = memoryCache(domains.items);
const keyCache = memoryCache(apiKeys.items);
const tenantSecretCache = memoryCache(tenantSecrets.items);

let controller: ConfigController;
const metrics = createOperatorMetrics(new Registry());

before(async () => {
  api = await startTestApiServer('config-sharding');
  api.kubectl(['create', 'namespace', SYSTEM]);
  api.kubectl(['apply', '-f', path.join(repoRoot, 'operator', 'rbac.yaml')]);
  const asAccount = (name: string) => new KubeClient(loadKubeConfig(api.kubeconfigWithToken(api.serviceAccountToken(SYSTEM, name), path.join(api.dir, `${name}.kubeconfig`))));
  const client = asAccount('mtrelay-operator');
  systemSecrets = new Informer<SecretObject>({ client, path: paths.secrets(SYSTEM), logger, onEvent: () => undefined });
  await systemSecrets.start();
  stops.push(() => systemSecrets.stop());
  const secrets = {
    get: (name: string, namespace?: string) => (namespace === SYSTEM ? systemSecrets.get(name, namespace) : tenantSecretCache.get(name, namespace)),
    list: () => [],
  };
  controller = new ConfigController({
    client, domains: domainCache as never, apiKeys: keyCache as never, secrets: secrets as never, requireDnsVerification: true,
    targets: { namespace: SYSTEM, relaySecret: 'mtrelay-relay-config', delivererSecret: 'mtrelay-deliverer-config', dispatcherSecret: 'mtrelay-dispatcher-config', ticketKeyRotationMs: 3_600_000 },
    events: new EventRecorder(client, logger, 'test', 'test'), metrics, logger,
  });
  clients.relay = asAccount('mtrelay-relay');
  clients.deliverer = asAccount('mtrelay-deliverer');
});
const clients: Record<string, KubeClient> = {};

after(async () => {
  for (const stop of stops) await stop();
  await api?.stop();
});

async function follow(view: 'relay' | 'deliverer'): Promise<ConfigStore> {
  const store = new ConfigStore();
  const source = new SecretConfigSource({ client: clients[view]!, secret: `${SYSTEM}/mtrelay-${view}-config`, store, logger });
  await source.start();
  stops.push(() => source.stop());
  return store;
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The full config written, and the operator's own cache of config Secrets caught up with it. */
async function writeFullConfig(): Promise<void> {
  await controller.reconcile();
  const revision = controller.compile().config.revision;
  await until('cache caught up', () => readConfigIndex(systemSecrets.get('mtrelay-deliverer-config', SYSTEM)?.data)?.revision === revision);
}

function configSecretSizes(): Map<string, number> {
  const list = JSON.parse(api.kubectl(['get', 'secrets', '-n', SYSTEM, '-l', 'mtrelay.dev/config', '-o', 'json'])) as { items: { metadata: { name: string }; data: Record<string, string> }[] };
  return new Map(list.items.map((s) => [s.metadata.name, Object.values(s.data).reduce((n, v) => n + Buffer.from(v, 'base64').length, 0)]));
}

test('5,000 domains and 5,000 keys: sharded under 1 MiB per Secret, read back whole by relay and deliverer', async () => {
  const started = Date.now();
  await controller.reconcile();
  const tookMs = Date.now() - started;
  const sizes = configSecretSizes();
  const delivererPieces = [...sizes.keys()].filter((n) => n.startsWith('mtrelay-deliverer-config'));
  assert.ok(delivererPieces.length >= 5, `deliverer config in ${delivererPieces.length} Secrets`);
  for (const [name, bytes] of sizes) assert.ok(bytes < 1024 * 1024, `${name} holds ${bytes} bytes`);

  const relay = await follow('relay');
  const deliverer = await follow('deliverer');
  await until('both loaded', () => Boolean(relay.current && deliverer.current));
  const full = controller.compile().config;
  assert.equal(deliverer.current!.document.revision, full.revision);
  assert.ok(JSON.stringify(deliverer.current!.document).includes('PRIVATE KEY'));
  assert.deepEqual(deliverer.current!.document, delivererView(full), 'the deliverer\'s view: no API key hashes, no webhook credentials');
  // The relay's view, plus the TLS ticket key all relays share (none in the deliverer's).
  const { tls } = relay.current!.document;
  assert.equal(Buffer.from(tls!.ticketKey, 'base64').length, 48);
  assert.deepEqual(relay.current!.document, withTicketKey(relayView(full), tls!));
  assert.equal(deliverer.current!.document.tls, undefined);
  assert.equal(relay.current!.document.apiKeys.length, COUNT);
  assert.equal(Object.values(relay.current!.document.namespaces).reduce((n, ns) => n + Object.keys(ns.domains).length, 0), COUNT);
  assert.ok(!JSON.stringify(relay.current!.document).includes('PRIVATE KEY'));
  process.stderr.write(`config of ${COUNT} domains + ${COUNT} keys: compiled and written in ${tookMs} ms; Secrets: ${JSON.stringify(Object.fromEntries(sizes))}\n`);
});

test('nothing is written when nothing changed', async () => {
  await writeFullConfig();
  const writes = async () => (await metrics.configWrites.get()).values.reduce((n, v) => n + v.value, 0);
  const before = await writes();
  const versions = JSON.stringify(JSON.parse(api.kubectl(['get', 'secrets', '-n', SYSTEM, '-l', 'mtrelay.dev/config', '-o', 'json'])).items.map((s: { metadata: { resourceVersion: string } }) => s.metadata.resourceVersion));
  await controller.reconcile();
  await controller.reconcile();
  assert.equal(await writes(), before);
  const after = JSON.stringify(JSON.parse(api.kubectl(['get', 'secrets', '-n', SYSTEM, '-l', 'mtrelay.dev/config', '-o', 'json'])).items.map((s: { metadata: { resourceVersion: string } }) => s.metadata.resourceVersion));
  assert.equal(after, versions);
});

test('a smaller config removes the pieces it no longer needs; readers follow', async () => {
  await writeFullConfig();
  const deliverer = await follow('deliverer');
  await until('loaded', () => Boolean(deliverer.current));
  const piecesBefore = [...configSecretSizes().keys()].filter((n) => n.startsWith('mtrelay-deliverer-config')).length;
  const removed = domainCache.remove((d) => Number(d.metadata.name.split('-')[1]) >= 1000);
  try {
    await controller.reconcile();
    const piecesAfter = [...configSecretSizes().keys()].filter((n) => n.startsWith('mtrelay-deliverer-config')).length;
    assert.ok(piecesAfter < piecesBefore, `${piecesBefore} → ${piecesAfter} pieces`);
    const revision = controller.compile().config.revision;
    await until('reader has the new revision', () => deliverer.current?.document.revision === revision);
    assert.equal(Object.values(deliverer.current!.document.namespaces).reduce((n, ns) => n + Object.keys(ns.domains).length, 0), 1000);
  } finally {
    domainCache.add(removed); // the other tests count on every domain
  }
});
