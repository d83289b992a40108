// Wires the deliverer: its config (with DKIM keys), the Kafka topics, the suppression list,
// the delivery engine fed by the consumer group, and the order in which they stop.
import type { Logger } from 'pino';
import type { ConfigOrigin } from '../shared/config/sources.ts';
import { createKafka, type KafkaConnection } from '../shared/kafka/client.ts';
import { KAFKA_COMPRESSIONS } from '../shared/kafka/compression.ts';
import type { KafkaCompression } from '../shared/cli-options.ts';
import { monitorTopics } from '../shared/kafka/topic-check.ts';
import { ensureTopicsWhenReachable, retryKafka, topicNames, type TopicLayout } from '../shared/kafka/topics.ts';
import { Role } from '../shared/ops/role.ts';
import { UsageCounters } from '../shared/usage/usage-counters.ts';
import { startKafkaUsage } from '../shared/usage/kafka-usage.ts';
import { createDeliveryEngine, type DeliverySettings } from './delivery-engine.ts';
import { KafkaDeliveryRuntime } from './kafka-runtime.ts';
import { createDelivererMetrics } from './metrics.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { SuppressionList, followSuppressions } from './suppression-list.ts';

export type { DeliverySettings } from './delivery-engine.ts';

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

export interface RunningDeliverer {
  role: Role;
  shutdown(): Promise<void>;
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
