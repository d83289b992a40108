// `mtrelay api` wiring in a cluster: the API keys from the relay's config, the suppression list
// read whole from the compacted topic and followed (as every deliverer does), and a producer
// that writes new entries and removals (tombstones) there with acks=all before the answer.
// With an events database: the store (PostgreSQL) and the consumer of mtrelay.events that
// fills it, for the events search and the trace.
// Stop order: stop answering (requests in progress finish), then the events consumer (its
// batch is stored and committed) and the database, then the producer and consumer.
import type { Logger } from 'pino';
import { SuppressionList, followSuppressions, suppressionKey, suppressionRecord } from '../deliverer/suppression-list.ts';
import { createKafka, type KafkaConnection } from '../shared/kafka/client.ts';
import { connectRoleProducer } from '../shared/kafka/role-producer.ts';
import { retryKafka, topicNames } from '../shared/kafka/topics.ts';
import type { ConfigOrigin } from '../shared/config/sources.ts';
import { Role } from '../shared/ops/role.ts';
import { ApiServer } from './api-server.ts';
import { createApiMetrics, createEventsStoreMetrics } from './metrics.ts';
import { EventsConsumer } from './events-consumer.ts';
import { PostgresEventStore } from './postgres-events.ts';

export interface ApiConfig {
  host: string;
  port: number;
  config: ConfigOrigin;
  kafka: KafkaConnection;
  topicPrefix: string;
  maxBodyBytes: number;
  /** The events database (a libpq URI); absent: no events search. */
  eventsDatabaseUrl?: string;
  eventRetentionDays: number;
  eventsGroupId: string;
  metricsHost: string;
  metricsPort: number;
}

export async function startApi(config: ApiConfig, logger: Logger): Promise<{ role: Role; port: number; shutdown(): Promise<void> }> {
  const role = await Role.start({ name: 'api', logger, metricsHost: config.metricsHost, metricsPort: config.metricsPort });
  const store = await role.openConfig(config.config);
  const kafka = createKafka({ connection: config.kafka, clientId: 'mtrelay-api', logger });
  const producer = await connectRoleProducer(kafka, role, logger);
  const topic = topicNames(config.topicPrefix).suppressions;
  const list = new SuppressionList();
  const follower = await retryKafka('loading the suppression list', () => followSuppressions(kafka, topic, list,
    (key, offset) => logger.warn({ key, offset }, 'skipped a malformed suppression entry')), logger, (reason) => role.waiting(reason));

  const events = config.eventsDatabaseUrl ? await startEventsStore(config, config.eventsDatabaseUrl, kafka, role) : undefined;

  const server = new ApiServer({
    ...(events ? { events: events.store } : {}),
    store, metrics: createApiMetrics(role.registry), logger, maxBodyBytes: config.maxBodyBytes,
    suppressions: {
      entries: (namespace) => list.entries(namespace),
      lookup: (namespace, address) => list.lookup(namespace, address),
      // In this pod at once (read your writes); in the deliverers as they follow the topic.
      put: async (entries) => {
        for (let i = 0; i < entries.length; i += 1000) {
          await producer.send({ topic, acks: -1, messages: entries.slice(i, i + 1000).map(suppressionRecord) });
        }
        for (const e of entries) list.add(e);
      },
      remove: async (entries) => {
        const keys = entries.map((e) => suppressionKey(e.namespace, e.address, e.type));
        await producer.send({ topic, acks: -1, messages: keys.map((key) => ({ key, value: null })) });
        for (const key of keys) list.remove(key);
      },
    },
  });
  const port = await server.listen(config.port, config.host);
  role.onStop('HTTP server (requests in progress are answered)', () => server.close());
  if (events) {
    role.onStop('events consumer (the batch being stored is committed)', () => events.consumer.stop());
    role.onStop('events database connections', () => events.close());
  }
  role.onStop('Kafka producer and the suppression list consumer', async () => {
    await producer.disconnect();
    await follower.disconnect();
  });
  role.started({ port, suppressions: list.size }, 'api listening');
  return { role, port, shutdown: () => role.shutdown() };
}

/**
 * Opens the events database (creating the table, dropping expired partitions; not ready until
 * it answers) and starts the consumer that fills it. Expired partitions are dropped hourly.
 */
async function startEventsStore(config: ApiConfig, url: string, kafka: ReturnType<typeof createKafka>, role: Role) {
  const logger = role.logger;
  const store = new PostgresEventStore({ url, retentionDays: config.eventRetentionDays, logger });
  await retryKafka('opening the events database', () => store.open(), logger, (reason) => role.waiting(reason));
  const metrics = createEventsStoreMetrics(role.registry);
  metrics.storeUp.set(1); // it answers; the consumer's batches say so from now on
  const pruning = setInterval(() => void store.prune().catch((error: Error) => logger.warn({ err: error }, 'dropping expired events partitions failed; retrying in an hour')), 3600_000);
  pruning.unref();
  const consumer = new EventsConsumer({
    kafka, topic: topicNames(config.topicPrefix).events, groupId: config.eventsGroupId, store, metrics, logger,
    onFatal: (error) => {
      logger.fatal({ err: error }, 'the events consumer stopped for good; exiting');
      process.exit(1);
    },
  });
  await retryKafka('joining the events store consumer group', () => consumer.start(), logger, (reason) => role.waiting(reason));
  return { store, consumer, close: async () => {
    clearInterval(pruning);
    await store.close();
  } };
}
