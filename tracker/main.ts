// `mtrelay tracker` wiring: keys, the Kafka producer of engagement events (and of the
// suppressions unsubscribe links make), the HTTP server, in the role's stop order (stop
// answering, then hand the last events to Kafka).
import type { Logger } from 'pino';
import { createKafka, type KafkaConnection } from '../shared/kafka/client.ts';
import { connectRoleProducer } from '../shared/kafka/role-producer.ts';
import { EventBatcher } from '../shared/kafka/event-batcher.ts';
import { topicNames } from '../shared/kafka/topics.ts';
import { Role } from '../shared/ops/role.ts';
import { watchTrackingKeys } from '../shared/tracking/keys-file.ts';
import { suppressionRecord } from '../deliverer/suppression-list.ts';
import { trustedProxies } from './client-address.ts';
import { createTrackerMetrics } from './metrics.ts';
import { TrackerServer } from './tracker-server.ts';

export interface TrackerConfig {
  host: string;
  port: number;
  keysFile: string;
  trustedProxies: string[];
  kafka: KafkaConnection;
  /** The topics' prefix: events go to <prefix>.events, which the relay and deliverer create. */
  topicPrefix: string;
  metricsHost: string;
  metricsPort: number;
}

export async function startTracker(config: TrackerConfig, logger: Logger): Promise<{ role: Role; port: number; shutdown(): Promise<void> }> {
  const role = await Role.start({ name: 'tracker', logger, metricsHost: config.metricsHost, metricsPort: config.metricsPort });
  const keys = watchTrackingKeys(config.keysFile, role, logger);
  const metrics = createTrackerMetrics(role.registry);

  const kafka = createKafka({ connection: config.kafka, clientId: 'mtrelay-tracker', logger });
  const producer = await connectRoleProducer(kafka, role, logger);
  const topics = topicNames(config.topicPrefix);
  const batcher = new EventBatcher(producer, topics.events, { lingerMs: 20, maxBytes: 512 * 1024 });
  const pending = new Set<Promise<void>>();

  const server = new TrackerServer({
    keys, metrics, logger, trustedProxies: trustedProxies(config.trustedProxies),
    publish: (event) => {
      const sent = batcher.send([{ key: event.transmission_id, value: JSON.stringify(event) }]).then(
        () => metrics.events.inc({ type: event.type }),
        (error: Error) => {
          metrics.eventsLost.inc();
          logger.error({ err: error, event }, 'engagement event not taken by Kafka');
        },
      );
      pending.add(sent);
      void sent.finally(() => pending.delete(sent));
    },
    // The suppression first (every deliverer follows the topic), then the event; both acknowledged before the answer.
    unsubscribe: async (event, suppression) => {
      await producer.send({ topic: topics.suppressions, acks: -1, messages: [suppressionRecord(suppression)] });
      await batcher.send([{ key: event.transmission_id, value: JSON.stringify(event) }]);
      metrics.events.inc({ type: event.type });
    },
  });
  const port = await server.listen(config.port, config.host);
  role.onStop('HTTP server (requests in progress are answered)', () => server.close());
  role.onStop('Kafka producer (events handed over are acknowledged)', async () => {
    await Promise.all(pending);
    await producer.disconnect();
  });
  role.started({ port, keys: [...keys().keys.keys()] }, 'tracker listening');
  return { role, port, shutdown: () => role.shutdown() };
}
