// Wires the deliverer together: config, suppressions, routes, the SMTP pool, the Kafka
// runtime, the operations endpoint, and a drain on SIGTERM.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { openConfigSource, type ConfigOrigin } from '../shared/config/sources.ts';
import { ConfigStore } from '../shared/config/store.ts';
import { createKafka } from '../shared/kafka/client.ts';
import { ensureTopics, topicNames, type TopicLayout } from '../shared/kafka/topics.ts';
import { listeningPort, startOpsServer } from '../shared/ops/http.ts';
import { Deliverer } from './delivery.ts';
import { KafkaDeliveryRuntime } from './kafka-runtime.ts';
import { createDelivererMetrics, type DelivererMetrics } from './metrics.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { RouteResolver, type StaticRoute } from './routes.ts';
import { SmtpPool, type PoolLimits, type TlsPolicy } from './smtp-pool.ts';
import { SuppressionList, followSuppressions } from './suppression-list.ts';

export interface DelivererConfig {
  /** A folder of manifests or the operator's config Secret. */
  config: ConfigOrigin;
  brokers: string[];
  topics: Omit<TopicLayout, 'retryDelays'>;
  policy: RetryPolicy;
  groupId: string;
  maxInFlight: number;
  dnsServers: string[];
  routes: Map<string, StaticRoute>;
  smtpPort: number;
  tlsPolicies: Map<string, TlsPolicy>;
  tlsCaFiles: string[];
  heloName: string;
  bounceDomain?: string;
  limits: PoolLimits;
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  metricsHost: string;
  metricsPort: number;
}

export interface RunningDeliverer {
  ops: Server;
  shutdown(): Promise<void>;
}

export function tlsPolicyFor(policies: Map<string, TlsPolicy>): (domain: string) => TlsPolicy {
  return (domain) => policies.get(domain) ?? policies.get('*') ?? 'opportunistic';
}

/** What delivers, whichever queue feeds it: routes, the SMTP pool, the engine. */
export type DeliverySettings = Pick<DelivererConfig, 'dnsServers' | 'routes' | 'smtpPort' | 'tlsPolicies' | 'tlsCaFiles' | 'heloName' | 'bounceDomain' | 'limits' | 'connectTimeoutMs' | 'socketTimeoutMs'>;

export function createDeliveryEngine(settings: DeliverySettings, store: ConfigStore, suppressions: SuppressionList, metrics: DelivererMetrics, logger: Logger): { deliverer: Deliverer; pool: SmtpPool } {
  const pool = new SmtpPool({
    ...settings.limits,
    heloName: settings.heloName,
    extraCa: settings.tlsCaFiles.map((f) => readFileSync(f)),
    connectTimeoutMs: settings.connectTimeoutMs,
    socketTimeoutMs: settings.socketTimeoutMs,
    tlsPolicy: tlsPolicyFor(settings.tlsPolicies),
    onOpenChange: (destination, open) => metrics.openConnections.set({ destination }, open),
  });
  const deliverer = new Deliverer({
    store,
    routes: new RouteResolver({ dnsServers: settings.dnsServers, routes: settings.routes, smtpPort: settings.smtpPort }),
    pool,
    isSuppressed: (namespace, address) => suppressions.has(namespace, address),
    ...(settings.bounceDomain ? { bounceDomain: settings.bounceDomain } : {}),
    logger,
  });
  return { deliverer, pool };
}

export async function startDeliverer(config: DelivererConfig, logger: Logger): Promise<RunningDeliverer> {
  const metrics = createDelivererMetrics();
  const store = new ConfigStore();
  const source = await openConfigSource(config.config, { store, logger });
  await source.start();

  const kafka = createKafka({ brokers: config.brokers, clientId: 'mtrelay-deliverer', logger });
  const layout: TopicLayout = { ...config.topics, retryDelays: config.policy.rungs.map((r) => r.name) };
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, layout, logger).finally(() => admin.disconnect());

  const suppressions = new SuppressionList();
  const suppressionConsumer = await followSuppressions(kafka, topicNames(layout.prefix).suppressions, suppressions,
    (key, offset) => logger.warn({ key, offset }, 'skipped a malformed suppression entry'));
  logger.info({ suppressions: suppressions.size }, 'suppression list loaded');

  const { deliverer, pool } = createDeliveryEngine(config, store, suppressions, metrics, logger);
  const runtime = new KafkaDeliveryRuntime({
    kafka, prefix: layout.prefix, policy: config.policy, deliverer, suppressions, metrics, logger,
    groupId: config.groupId, maxInFlight: config.maxInFlight, maxMessageBytes: layout.maxMessageBytes,
  });
  await runtime.start();
  let draining = false;
  const ops = await startOpsServer({
    host: config.metricsHost, port: config.metricsPort, registry: metrics.registry,
    readiness: () => (draining ? 'draining' : store.loaded ? undefined : 'no config loaded'),
  });
  logger.info({ metricsPort: listeningPort(ops), groupId: config.groupId }, 'deliverer running');
  let stopping: Promise<void> | undefined;
  return {
    ops,
    shutdown: () => (stopping ??= (async () => {
      draining = true;
      logger.info('draining: no new records, finishing deliveries in flight');
      source.stop();
      await runtime.stop();
      pool.close();
      await suppressionConsumer.disconnect();
      await new Promise<void>((resolve) => ops.close(() => resolve()));
      logger.info('deliverer stopped');
    })()),
  };
}
