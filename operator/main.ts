// Wires the operator: informers on every replica (warm caches), controllers and their work
// queues only on the leader, an operations endpoint, and a clean hand-over on shutdown.
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { CONFIG_SET_LABEL } from '../shared/config/config-secrets.ts';
import { KubeClient, loadKubeConfig } from '../shared/kube/client.ts';
import { Informer, type InformerEvent } from '../shared/kube/informer.ts';
import { listeningPort, startOpsServer } from '../shared/ops/http.ts';
import { ApiKeyController, generatedKeySecret } from './api-key-controller.ts';
import { CONFIG_KEY, ConfigController, type ConfigTargets } from './config-controller.ts';
import { DnsChecker } from './dns-check.ts';
import { EventRecorder } from './events.ts';
import { LeaderElector } from './leader-election.ts';
import { createOperatorMetrics } from './metrics.ts';
import { SECRET_LABEL, keyOf, paths, type ApiKeyObject, type SecretObject, type SendingDomainObject, type WebhookObject } from './resources.ts';
import { WebhookController } from './webhook-controller.ts';
import { SendingDomainController, type DomainPolicy } from './sending-domain-controller.ts';
import { WorkQueue } from './work-queue.ts';

/** How long config changes are gathered before the config is compiled and written. */
const CONFIG_BATCH_MS = 100;
const MAX_CONFIG_BATCH_MS = 2000;

export interface OperatorConfig {
  kubeconfig?: string;
  identity: string;
  targets: ConfigTargets;
  leaseNamespace: string;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  policy: DomainPolicy;
  dnsServers: string[];
  relistMs: number;
  metricsHost: string;
  metricsPort: number;
}

export interface RunningOperator {
  ops: Server;
  elector: LeaderElector;
  /** Stops the controllers, releases leadership, stops the informers. */
  shutdown(): Promise<void>;
}

export async function startOperator(config: OperatorConfig, logger: Logger, onLostLeadership: () => void): Promise<RunningOperator> {
  const client = new KubeClient(loadKubeConfig(config.kubeconfig));
  const metrics = createOperatorMetrics();
  const events = new EventRecorder(client, logger, 'mtrelay-operator', config.identity);
  const queues: WorkQueue[] = [];
  let leading = false;
  let stopping: Promise<void> | undefined;

  // Informers first: their handlers only enqueue; the queues run when this replica leads.
  const enqueue = { domain: (_k: string) => {}, apiKey: (_k: string) => {}, webhook: (_k: string) => {}, config: () => {} };
  const informer = <T extends SecretObject | SendingDomainObject | ApiKeyObject | WebhookObject>(kind: string, path: string, onEvent: (e: InformerEvent, o: T) => void, labelSelector?: string) =>
    new Informer<T>({ client, path, labelSelector, logger, relistMs: config.relistMs, onEvent, onSynced: () => enqueue.config(), onRestart: () => metrics.informerRestarts.inc({ kind }) });
  // Every resource naming the same domain is reconciled again: a claim may have moved.
  const domains = informer<SendingDomainObject>('SendingDomain', paths.sendingDomains(), (_e, d) => {
    for (const other of domains.list()) if (other.spec.domain === d.spec.domain) enqueue.domain(keyOf(other));
    enqueue.domain(keyOf(d));
    enqueue.config();
  });
  const apiKeys = informer<ApiKeyObject>('ApiKey', paths.apiKeys(), (_e, k) => { enqueue.apiKey(keyOf(k)); enqueue.config(); });
  const webhooks = informer<WebhookObject>('Webhook', paths.webhooks(), (_e, w) => { enqueue.webhook(keyOf(w)); enqueue.config(); });
  // Only Secrets labelled for mtrelay: the cache stays small, and unlabelled Secrets stay out of reach.
  const secrets = informer<SecretObject>('Secret', paths.secrets(), (_e, s) => onSecret(s), SECRET_LABEL);
  function onSecret(secret: SecretObject): void {
    const { namespace, name, labels } = secret.metadata;
    for (const owner of secret.metadata.ownerReferences ?? []) {
      if (owner.kind === 'SendingDomain') enqueue.domain(`${namespace}/${owner.name}`);
      if (owner.kind === 'ApiKey') enqueue.apiKey(`${namespace}/${owner.name}`);
    }
    // A user-supplied key Secret: find the ApiKeys that name it (or the domain it belongs to).
    for (const key of apiKeys.list(namespace)) if (key.spec.secretRef?.name === name) enqueue.apiKey(keyOf(key));
    const hooks = webhooks.list(namespace).filter((w) => w.spec.auth?.secretRef?.name === name);
    for (const hook of hooks) enqueue.webhook(keyOf(hook));
    if (name.endsWith('-dkim') && domains.get(name.slice(0, -'-dkim'.length), namespace)) enqueue.domain(`${namespace}/${name.slice(0, -'-dkim'.length)}`);
    const referenced = labels?.[CONFIG_SET_LABEL] !== undefined || name.endsWith('-dkim') || hooks.length > 0
      || apiKeys.list(namespace).some((k) => (k.spec.secretRef?.name ?? generatedKeySecret(k)?.name) === name);
    if (referenced) enqueue.config();
  }

  const domainController = new SendingDomainController({ client, domains, secrets, dns: new DnsChecker(config.dnsServers), events, policy: config.policy, logger });
  const apiKeyController = new ApiKeyController({ client, apiKeys, secrets, events, logger });
  const webhookController = new WebhookController({ client, webhooks, secrets, events });
  const configController = new ConfigController({
    client, domains, apiKeys, webhooks, secrets, targets: config.targets, requireDnsVerification: config.policy.requireDnsVerification, events, metrics, logger,
  });
  const domainQueue = new WorkQueue({ kind: 'SendingDomain', reconcile: (k) => domainController.reconcile(k), logger, metrics });
  const apiKeyQueue = new WorkQueue({ kind: 'ApiKey', reconcile: (k) => apiKeyController.reconcile(k), logger, metrics });
  const webhookQueue = new WorkQueue({ kind: 'Webhook', reconcile: (k) => webhookController.reconcile(k), logger, metrics });
  let lastConfigMs = 0;
  const configQueue = new WorkQueue({ kind: 'Config', logger, metrics, workers: 1, reconcile: async () => {
    const started = Date.now();
    await configController.reconcile();
    lastConfigMs = Date.now() - started;
  } });
  queues.push(domainQueue, apiKeyQueue, webhookQueue, configQueue);
  enqueue.domain = (k) => { if (leading) domainQueue.add(k); };
  enqueue.apiKey = (k) => { if (leading) apiKeyQueue.add(k); };
  enqueue.webhook = (k) => { if (leading) webhookQueue.add(k); };
  // Changes within one window make one config write: a burst of kubectl applies compiles once,
  // not once per object (each write is read by every relay and deliverer pod).
  // The window grows with the cost of a write (twice the last one, up to 2 s), so a large
  // config under a storm of changes is not rewritten back to back.
  enqueue.config = () => { if (leading) configQueue.addAfter(CONFIG_KEY, Math.min(MAX_CONFIG_BATCH_MS, Math.max(CONFIG_BATCH_MS, 2 * lastConfigMs))); };

  await Promise.all([domains.start(), apiKeys.start(), webhooks.start(), secrets.start()]);
  logger.info({ sendingDomains: domains.list().length, apiKeys: apiKeys.list().length, secrets: secrets.list().length }, 'caches synced');

  metrics.resourceConditions.list = () => [['SendingDomain', domains.list()], ['ApiKey', apiKeys.list()], ['Webhook', webhooks.list()]].flatMap(([kind, list]) =>
    (list as readonly (SendingDomainObject | ApiKeyObject | WebhookObject)[]).flatMap((o) => (o.status?.conditions ?? []).map((c) => ({ kind: kind as string, condition: c.type, status: c.status }))));

  const elector = new LeaderElector({
    client, namespace: config.leaseNamespace, name: config.leaseName, identity: config.identity, logger,
    leaseDurationMs: config.leaseDurationMs, renewDeadlineMs: config.renewDeadlineMs, retryPeriodMs: config.retryPeriodMs,
    onStartedLeading: () => {
      if (stopping) return;
      leading = true;
      metrics.leader.set(1);
      for (const q of queues) q.start();
      for (const d of domains.list()) domainQueue.add(keyOf(d));
      for (const k of apiKeys.list()) apiKeyQueue.add(keyOf(k));
      for (const w of webhooks.list()) webhookQueue.add(keyOf(w));
      configQueue.add(CONFIG_KEY);
    },
    onStoppedLeading: () => {
      // As controller-runtime: a replica that lost the Lease stops at once and restarts clean.
      leading = false;
      metrics.leader.set(0);
      onLostLeadership();
    },
  });
  elector.start();

  const ops = await startOpsServer({
    host: config.metricsHost, port: config.metricsPort, registry: metrics.registry,
    readiness: () => (domains.synced && apiKeys.synced && webhooks.synced && secrets.synced ? undefined : 'caches not synced'),
  });
  logger.info({ identity: config.identity, metricsPort: listeningPort(ops), configNamespace: config.targets.namespace }, 'operator running');

  const shutdown = () => (stopping ??= (async () => {
    leading = false;
    await Promise.all(queues.map((q) => q.stop()));
    await elector.stop();
    metrics.leader.set(0);
    await Promise.all([domains.stop(), apiKeys.stop(), webhooks.stop(), secrets.stop()]);
    await new Promise<void>((resolve) => ops.close(() => resolve()));
    logger.info('operator stopped');
  })());
  return { ops, elector, shutdown };
}
