// `npm run bench:operator`: the operator at scale against a real API server on loopback.
// Creates N SendingDomains (each gets a generated 2048-bit DKIM key) and N ApiKeys (each a
// generated key) across 20 namespaces, and measures how long until the relay's config holds
// them all; then deletes keys one at a time and measures how long until a reader of the
// relay's config (as a relay pod runs it) no longer has each. Reports the operator's CPU and
// memory. There is no peer to compare with: no other tool does this job.
// Flags: --domains N (default 1000), --keys N (default 1000).
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import pino from 'pino';
import { SecretConfigSource } from '../../shared/config/secret-source.ts';
import { ConfigStore } from '../../shared/config/store.ts';
import { KubeClient, loadKubeConfig } from '../../shared/kube/client.ts';
import { KubeApiServer } from '../k8s/api-server.ts';
import { repoRoot } from '../kafka/broker.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { machine } from './machine.ts';
import { cpuSeconds, pssKb } from './proc-stats.ts';
import { writeMarkdown } from './report.ts';

const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const DOMAINS = flag('domains', 1000);
const KEYS = flag('keys', 1000);
const NAMESPACES = 20;
const SYSTEM = 'mtrelay-system';
const dir = path.join(repoRoot, '.cache', 'bench-operator');
const logger = pino({ level: 'warn' });

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const api = new KubeApiServer({ dir });
let operator: MtrelayProcess | undefined;
let source: SecretConfigSource | undefined;

const seconds = (ms: number) => (ms / 1000).toFixed(1);

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

try {
  await api.start();
  api.kubectl(['create', 'namespace', SYSTEM]);
  for (let n = 0; n < NAMESPACES; n++) api.kubectl(['create', 'namespace', `account-${n}`]);
  api.kubectl(['apply', '-f', path.join(repoRoot, 'operator', 'rbac.yaml')]);
  const token = api.serviceAccountToken(SYSTEM, 'mtrelay-operator');
  const operatorKubeconfig = api.kubeconfigWithToken(token, path.join(dir, 'operator.kubeconfig'));
  operator = new MtrelayProcess(['operator', '--kubeconfig', operatorKubeconfig, '--namespace', SYSTEM, '--no-require-dns-verification',
    '--dns', '127.0.0.1:1', '--metrics-host', '127.0.0.1', '--metrics-port', '0']);
  operator.metricsPort = (await operator.started('operator running')).metricsPort as number;
  await operator.waitForLog((l) => l.msg === 'became the leader');

  const admin = new KubeClient(loadKubeConfig(api.kubeconfig));
  const relayClient = new KubeClient(loadKubeConfig(api.kubeconfigWithToken(api.serviceAccountToken(SYSTEM, 'mtrelay-relay'), path.join(dir, 'relay.kubeconfig'))));
  const store = new ConfigStore();
  source = new SecretConfigSource({ client: relayClient, secret: `${SYSTEM}/mtrelay-relay-config`, store, logger, startWaitMs: 100 });
  await source.start();

  const pid = operator.child.pid!;
  const cpuBefore = cpuSeconds(pid);
  const limit = pLimit(16);
  const started = Date.now();
  await Promise.all([
    ...Array.from({ length: DOMAINS }, (_, i) => limit(() => admin.create(`/apis/mtrelay.dev/v1alpha1/namespaces/account-${i % NAMESPACES}/sendingdomains`, {
      apiVersion: 'mtrelay.dev/v1alpha1', kind: 'SendingDomain', metadata: { name: `domain-${i}` }, spec: { domain: `mail${i}.bench.test` },
    }))),
    ...Array.from({ length: KEYS }, (_, i) => limit(() => admin.create(`/apis/mtrelay.dev/v1alpha1/namespaces/account-${i % NAMESPACES}/apikeys`, {
      apiVersion: 'mtrelay.dev/v1alpha1', kind: 'ApiKey', metadata: { name: `key-${i}` }, spec: { permissions: ['smtp/send'] },
    }))),
  ]);
  const created = Date.now() - started;
  const count = () => {
    const doc = store.current?.document;
    if (!doc) return { keys: 0, domains: 0 };
    return { keys: doc.apiKeys.length, domains: Object.values(doc.namespaces).reduce((n, ns) => n + Object.keys(ns.domains).length, 0) };
  };
  await until('all resources in the relay config', () => count().keys === KEYS && count().domains === DOMAINS, 30 * 60_000);
  const converged = Date.now() - started;
  const cpu = cpuSeconds(pid) - cpuBefore;
  const memoryKb = pssKb(pid);
  const heapMb = (await operator.metric('mtrelay_nodejs_heap_size_used_bytes')) / 2 ** 20;
  const writes = await operator.metric('mtrelay_operator_config_writes_total', { view: 'relay' });

  const revocations: number[] = [];
  for (let i = 0; i < 10; i++) {
    const id = `account-${i % NAMESPACES}/key-${i}`;
    const t = Date.now();
    await admin.delete(`/apis/mtrelay.dev/v1alpha1/namespaces/account-${i % NAMESPACES}/apikeys/key-${i}`);
    await until(`${id} gone`, () => !store.current!.document.apiKeys.some((k) => k.id === id), 60_000);
    revocations.push(Date.now() - t);
  }
  revocations.sort((a, b) => a - b);

  const lines = [
    `# Operator at scale (${new Date().toISOString()})`, '', ...machine().map((m) => `- ${m}`), '',
    `| measure | value |`, '| --- | --- |',
    `| resources created (${DOMAINS} SendingDomains + ${KEYS} ApiKeys, 16 at a time) | ${seconds(created)} s |`,
    `| from the first create until the relay's config held all of them | ${seconds(converged)} s |`,
    `| operator CPU during that time | ${cpu.toFixed(1)} s |`,
    `| operator memory (PSS) afterwards | ${Math.round(memoryKb / 1024)} MiB, of which JavaScript heap in use ${Math.round(heapMb)} MiB |`,
    `| relay config writes during that time (coalesced by the work queue) | ${writes} |`,
    `| kubectl delete of an ApiKey → gone from a relay's config (10 deletes) | median ${revocations[5]} ms, max ${revocations[9]} ms |`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeMarkdown(path.join(repoRoot, '.cache', 'bench-results'), 'operator', new Date(started), lines.join('\n'));
} finally {
  source?.stop();
  await operator?.stop();
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
}
