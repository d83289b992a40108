// Wires the relay: its config (without private keys), the Kafka topics and producer, the
// SMTP listeners, and the order in which they stop.
import type { Logger } from 'pino';
import { relayView } from '../shared/config/compiled-config.ts';
import type { ConfigOrigin } from '../shared/config/sources.ts';
import { createKafka, type KafkaConnection } from '../shared/kafka/client.ts';
import { KAFKA_COMPRESSIONS } from '../shared/kafka/compression.ts';
import type { KafkaCompression } from '../shared/cli-options.ts';
import { monitorTopics } from '../shared/kafka/topic-check.ts';
import { ensureTopicsWhenReachable, retryKafka, topicNames, type TopicLayout } from '../shared/kafka/topics.ts';
import { Role } from '../shared/ops/role.ts';
import { startKafkaUsage } from '../shared/usage/kafka-usage.ts';
import { UsageCounters } from '../shared/usage/usage-counters.ts';
import type { AuthThrottleOptions } from './auth-throttle.ts';
import { createRelayMetrics } from './metrics.ts';
import type { RelayServer, RelaySettings } from './relay-server.ts';
import { listenerPorts, startSmtpService } from './smtp-service.ts';
import { SubmissionProducer } from './submission-producer.ts';
import type { CertificateFiles } from './tls-files.ts';

export interface RelayConfig {
  settings: RelaySettings;
  /** A folder of manifests or the operator's config Secret. */
  config: ConfigOrigin;
  kafka: KafkaConnection;
  topics: Omit<TopicLayout, 'maxMessageBytes'>;
  /** False: topics are made elsewhere (Strimzi KafkaTopic); they are only checked. */
  createTopics: boolean;
  kafkaTimeoutMs: number;
  /** How long a message arriving at an idle producer waits for others to share its produce request. */
  kafkaLingerMs: number;
  /** Compression of the submissions the relay produces. */
  kafkaCompression: KafkaCompression;
  certificates: CertificateFiles[];
  metricsHost: string;
  metricsPort: number;
  authThrottle: Partial<AuthThrottleOptions>;
}

export interface RunningRelay {
  role: Role;
  server: RelayServer;
  producer: SubmissionProducer;
  shutdown(): Promise<void>;
}

export async function startRelay(config: RelayConfig, logger: Logger): Promise<RunningRelay> {
  const role = await Role.start({ name: 'relay', logger, metricsHost: config.metricsHost, metricsPort: config.metricsPort });
  const metrics = createRelayMetrics(role.registry);
  // The operator's relay Secret holds no private keys already; the view also covers a folder.
  const store = await role.openConfig(config.config, relayView);

  const kafka = createKafka({ connection: config.kafka, clientId: 'mtrelay-relay', logger, requestTimeoutMs: config.kafkaTimeoutMs });
  const layout: TopicLayout = { ...config.topics, maxMessageBytes: config.settings.maxMessageBytes };
  await ensureTopicsWhenReachable(kafka, layout, logger, { create: config.createTopics, waiting: (reason) => role.waiting(reason) });
  const topics = monitorTopics({ kafka, layout, logger });
  role.readiness(topics.notReady);
  role.onStop('topic checks', topics.stop);
  const producer = new SubmissionProducer({
    kafka, topic: topicNames(layout.prefix).submissions, logger, timeoutMs: config.kafkaTimeoutMs, produceSeconds: metrics.produceSeconds,
    maxBatchBytes: Math.min(16 * 1024 * 1024, layout.maxMessageBytes),
    lingerMs: config.kafkaLingerMs,
    compression: KAFKA_COMPRESSIONS[config.kafkaCompression],
  });
  producer.start();
  metrics.probes.kafkaConnected = () => producer.connected;
  role.readiness(() => (producer.connected ? undefined : 'Kafka producer not connected'));
  // No port opens before a message can be stored: the first clients would get 451 4.3.0.
  // (A stop meanwhile ends the process: nothing has been accepted yet.)
  role.waiting('Kafka producer connecting');
  await producer.whenConnected();
  // The fleet's counts before the first client: a restart must not reset a key's limit.
  role.waiting('loading usage counts');
  const counters = new UsageCounters();
  const usage = await retryKafka('loading usage counts', () => startKafkaUsage({
    kafka, topic: topicNames(layout.prefix).usage, counters, logger,
    onPublished: (n) => metrics.usagePublished.inc(n), onFailed: () => metrics.usagePublishFailures.inc(),
  }), logger, (reason) => role.waiting(reason));

  const server = await startSmtpService(role, { ...config, store, queue: producer, metrics, counters });
  role.onStop('usage counts (the last are shared)', () => usage.stop());
  role.onStop('Kafka producer (records handed over are acknowledged)', () => producer.close());
  role.started({ ports: listenerPorts(server, config.settings), tls: config.certificates.length > 0, authWithoutTls: config.settings.allowAuthWithoutTls }, 'relay listening');
  return { role, server, producer, shutdown: () => role.shutdown() };
}
