// Wires the deliverer: its config (with DKIM keys), the Kafka topics, the suppression list,
// the delivery engine fed by the consumer group, and the order in which they stop.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Resolver } from 'node:dns/promises';
import type { Logger } from 'pino';
import { watchTrackingKeys } from '../shared/tracking/keys-file.ts';
import type { TrackingKeyRing } from '../shared/tracking/tokens.ts';
import type { ConfigStore } from '../shared/config/store.ts';
import type { ConfigOrigin } from '../shared/config/sources.ts';
import { createKafka, type KafkaConnection } from '../shared/kafka/client.ts';
import { KAFKA_COMPRESSIONS } from '../shared/kafka/compression.ts';
import type { KafkaCompression } from '../shared/cli-options.ts';
import { monitorTopics } from '../shared/kafka/topic-check.ts';
import { ensureTopicsWhenReachable, retryKafka, topicNames, type TopicLayout } from '../shared/kafka/topics.ts';
import { Role } from '../shared/ops/role.ts';
import { Deliverer } from './delivery.ts';
import { KafkaDeliveryRuntime } from './kafka-runtime.ts';
import { createDelivererMetrics, type DelivererMetrics } from './metrics.ts';
import type { RetryPolicy } from './retry-policy.ts';
import type { DestinationPolicy } from './destination-policy.ts';
import { RouteResolver, type StaticRoute } from './routes.ts';
import { SmtpPool, type PoolLimits, type TlsPolicy } from './smtp-pool.ts';
import { MtaStsPolicies } from './transport-security/mta-sts.ts';
import { TlsReports } from './transport-security/tls-report.ts';
import { TlsReportSender } from './transport-security/tls-report-sender.ts';
import { reportMailer } from './transport-security/tls-report-delivery.ts';
import { TransportSecurity } from './transport-security/transport-security.ts';
import { ValidatedDns } from './transport-security/validated-dns.ts';
import { AdaptiveShaper } from './shaping/adaptive-shaper.ts';
import { readProviderRules } from './shaping/provider-rules.ts';
import { UsageCounters } from '../shared/usage/usage-counters.ts';
import { startKafkaUsage } from '../shared/usage/kafka-usage.ts';
import { SuppressionList, followSuppressions } from './suppression-list.ts';

export interface DelivererConfig extends DeliverySettings {
  /** A folder of manifests or the operator's config Secret. */
  config: ConfigOrigin;
  kafka: KafkaConnection;
  topics: Omit<TopicLayout, 'retryDelays'>;
  /** False: topics are made elsewhere (Strimzi KafkaTopic); they are only checked. */
  createTopics: boolean;
  policy: RetryPolicy;
  groupId: string;
  maxInFlight: number;
  /** Compression of the retry records the deliverer produces. */
  kafkaCompression: KafkaCompression;
  metricsHost: string;
  metricsPort: number;
}

/** What delivers, whichever queue feeds it: routes, the SMTP pool, the engine. */
export interface DeliverySettings {
  dnsServers: string[];
  routes: Map<string, StaticRoute>;
  /** Which resolved addresses may be connected to (static routes are not checked). */
  destinations: DestinationPolicy;
  smtpPort: number;
  tlsPolicies: Map<string, TlsPolicy>;
  tlsCaFiles: string[];
  /** Follow recipient domains' MTA-STS policies. */
  mtaSts: boolean;
  /** Follow DNSSEC-validated TLSA records. */
  dane: boolean;
  /** Send daily TLS reports, in this organisation's name; mailed ones from `from`. */
  tlsReports?: { organization: string; contact: string; from?: string };
  heloName: string;
  bounceDomain?: string;
  /** Limits per destination address, for hosts of no known provider. */
  limits: PoolLimits;
  /** Per-provider limits that back off on throttling (undefined: per destination only); `rulesFile` changes the defaults. */
  shaping?: { rulesFile?: string };
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  /** The keys come from `keys` when the role already follows the file (standalone's tracker), else from `keysFile`. */
  tracking: { keysFile?: string; keys?: () => TrackingKeyRing; url?: string; lifetimeSeconds: number };
}

export interface RunningDeliverer {
  role: Role;
  shutdown(): Promise<void>;
}

export function tlsPolicyFor(policies: Map<string, TlsPolicy>): (domain: string) => TlsPolicy {
  return (domain) => policies.get(domain) ?? policies.get('*') ?? 'opportunistic';
}

/** A resolver of the configured DNS servers (MTA-STS, TLS reports). */
function resolverOf(settings: DeliverySettings): Resolver {
  const resolver = new Resolver({ timeout: 5000, tries: 2 });
  if (settings.dnsServers.length) resolver.setServers(settings.dnsServers);
  return resolver;
}

/** DANE, MTA-STS and the configured policy, with TLS reports. */
function transportSecurity(settings: DeliverySettings, extraCa: Buffer[], metrics: DelivererMetrics): TransportSecurity {
  const resolver = resolverOf(settings);
  const reports = new TlsReports(metrics.tlsSessions);
  return new TransportSecurity({
    configured: tlsPolicyFor(settings.tlsPolicies),
    reports,
    ...(settings.dane ? { dane: new ValidatedDns({ servers: settings.dnsServers }) } : {}),
    ...(settings.mtaSts ? { mtaSts: new MtaStsPolicies({ resolver, extraCa, destinations: settings.destinations }) } : {}),
  });
}

/** Per-provider limits; the fleet's throttling replies are counted in `counters`. */
function providerShaper(role: Role, settings: DeliverySettings, counters: UsageCounters, metrics: DelivererMetrics): AdaptiveShaper {
  const { connectionsPerDestination: connections, messagesPerConnection, messagesPerSecond } = settings.limits;
  const rules = readProviderRules(settings.shaping?.rulesFile, { connections, messagesPerConnection, messagesPerSecond });
  const shaper = new AdaptiveShaper({ rules, counters, factorGauge: metrics.providerFactor, throttledCounter: metrics.throttlingReplies });
  shaper.start();
  role.onStop('provider shaping', () => shaper.stop());
  return shaper;
}

/** The delivery engine of a role; its connections close after the role's runtime has drained. */
export function createDeliveryEngine(role: Role, settings: DeliverySettings, store: ConfigStore, suppressions: SuppressionList, metrics: DelivererMetrics,
  counters: UsageCounters): { deliverer: Deliverer; closePool: () => void } {
  const extraCa = settings.tlsCaFiles.map((f) => readFileSync(f));
  const security = transportSecurity(settings, extraCa, metrics);
  const pool = new SmtpPool({
    ...settings.limits,
    heloName: settings.heloName,
    extraCa,
    connectTimeoutMs: settings.connectTimeoutMs,
    socketTimeoutMs: settings.socketTimeoutMs,
    onTlsSession: (session) => security.reports.record(session),
    onOpenChange: (destination, open) => metrics.openConnections.set({ destination }, open),
  });
  const deliverer = new Deliverer({
    store,
    routes: new RouteResolver({ dnsServers: settings.dnsServers, routes: settings.routes, smtpPort: settings.smtpPort, destinations: settings.destinations }),
    pool,
    security,
    ...(settings.shaping ? { shaper: providerShaper(role, settings, counters, metrics) } : {}),
    isSuppressed: (namespace, address, transactional) => suppressions.has(namespace, address, transactional),
    ...(settings.bounceDomain ? { bounceDomain: settings.bounceDomain } : {}),
    tracking: {
      keys: settings.tracking.keys ?? (settings.tracking.keysFile ? watchTrackingKeys(settings.tracking.keysFile, role, role.logger) : () => undefined),
      ...(settings.tracking.url ? { clusterUrl: settings.tracking.url } : {}),
      lifetimeSeconds: settings.tracking.lifetimeSeconds,
    },
    logger: role.logger,
  });
  if (settings.tlsReports) {
    const { from, ...submitter } = settings.tlsReports;
    const sender = new TlsReportSender({
      reports: security.reports, resolver: resolverOf(settings), destinations: settings.destinations, extraCa, logger: role.logger,
      submitter: { ...submitter, instance: hostname() }, ...(from ? { mailer: reportMailer(deliverer, store, from) } : {}),
    });
    sender.start();
    role.onStop('daily TLS reports', () => sender.stop());
  }
  return { deliverer, closePool: () => pool.close() };
}

export async function startDeliverer(config: DelivererConfig, logger: Logger): Promise<RunningDeliverer> {
  const role = await Role.start({ name: 'deliverer', logger, metricsHost: config.metricsHost, metricsPort: config.metricsPort });
  const metrics = createDelivererMetrics(role.registry);
  const store = await role.openConfig(config.config);

  const kafka = createKafka({ connection: config.kafka, clientId: 'mtrelay-deliverer', logger });
  const layout: TopicLayout = { ...config.topics, retryDelays: config.policy.rungs.map((r) => r.name) };
  await ensureTopicsWhenReachable(kafka, layout, logger, { create: config.createTopics, waiting: (reason) => role.waiting(reason) });
  const topics = monitorTopics({ kafka, layout, logger });
  role.readiness(topics.notReady);
  role.onStop('topic checks', topics.stop);

  const suppressions = new SuppressionList();
  const suppressionConsumer = await retryKafka('loading the suppression list', () => followSuppressions(kafka, topicNames(layout.prefix).suppressions, suppressions,
    (key, offset) => logger.warn({ key, offset }, 'skipped a malformed suppression entry')), logger, (reason) => role.waiting(reason));
  logger.info({ suppressions: suppressions.size }, 'suppression list loaded');

  // The providers' throttling, shared by the fleet through the usage topic.
  const counters = new UsageCounters();
  const usage = await retryKafka('loading the fleet\'s throttling history', () => startKafkaUsage({
    kafka, topic: topicNames(layout.prefix).usage, counters, logger, accept: (record) => record.counter.startsWith('shaping|'),
  }), logger, (reason) => role.waiting(reason));
  role.onStop('usage counts (the last throttling replies are shared)', () => usage.stop());

  const { deliverer, closePool } = createDeliveryEngine(role, config, store, suppressions, metrics, counters);
  const runtime = new KafkaDeliveryRuntime({
    kafka, prefix: layout.prefix, policy: config.policy, deliverer, suppressions, metrics, logger,
    groupId: config.groupId, maxInFlight: config.maxInFlight, maxMessageBytes: layout.maxMessageBytes,
    compression: KAFKA_COMPRESSIONS[config.kafkaCompression],
    onFatal: (error) => {
      logger.fatal({ err: error }, 'the Kafka consumer stopped for good; exiting');
      process.exit(1);
    },
  });
  await runtime.start();
  role.onStop('consumer group (deliveries in flight finish, offsets are committed)', () => runtime.stop());
  role.onStop('outbound SMTP connections', closePool);
  role.onStop('suppression list consumer', () => suppressionConsumer.disconnect());
  role.started({ groupId: config.groupId }, 'deliverer running');
  return { role, shutdown: () => role.shutdown() };
}
