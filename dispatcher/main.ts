// `mtrelay dispatcher` wiring: the config (webhooks and their credentials), the dispatcher,
// the consumer of mtrelay.events, and status written to each Webhook, in the role's stop order.
import type { Logger } from 'pino';
import type { ConfigOrigin } from '../shared/config/sources.ts';
import type { ConfigStore } from '../shared/config/store.ts';
import { createKafka, type KafkaConnection } from '../shared/kafka/client.ts';
import { retryKafka, topicNames } from '../shared/kafka/topics.ts';
import { Role } from '../shared/ops/role.ts';
import { hostname } from 'node:os';
import { DeliveryStatusBook, type EventAnnouncer, type StatusWriter } from './delivery-status.ts';
import { Dispatcher } from './dispatcher.ts';
import { KafkaEvents } from './kafka-events.ts';
import { createDispatcherMetrics } from './metrics.ts';
import type { DispatchPolicy } from './webhook-queue.ts';
import { webhookAgent } from './outbound.ts';
import { OAuth2Tokens, sendBatch } from './webhook-sender.ts';

export interface DispatcherConfig {
  config: ConfigOrigin;
  kafka: KafkaConnection;
  topicPrefix: string;
  groupId: string;
  policy: DispatchPolicy;
  allowPrivate: boolean;
  maxInFlight: number;
  metricsHost: string;
  metricsPort: number;
}

/** Writes status.delivery of a Webhook through the API server (config read from the operator's Secret), and its Events. */
async function kubeStatus(origin: ConfigOrigin, logger: Logger): Promise<{ writer: StatusWriter; announcer: EventAnnouncer } | undefined> {
  if (!('configSecret' in origin)) return undefined;
  const [{ KubeClient, loadKubeConfig, resourcePath }, { EventRecorder }] = await Promise.all([import('../shared/kube/client.ts'), import('../shared/kube/events.ts')]);
  const client = new KubeClient(loadKubeConfig(origin.kubeconfig));
  const recorder = new EventRecorder(client, logger, 'mtrelay-dispatcher', hostname());
  return {
    writer: async (namespace, name, delivery) => {
      const written = await client.mergePatch<{ metadata: { uid?: string } }>(`${resourcePath('mtrelay.dev/v1alpha1', 'webhooks', namespace, name)}/status`, { status: { delivery } });
      return { ...(written.metadata.uid ? { uid: written.metadata.uid } : {}) };
    },
    announcer: ({ namespace, name, uid }, event) => {
      const target = { apiVersion: 'mtrelay.dev/v1alpha1', kind: 'Webhook', metadata: { namespace, name, uid } };
      if (event.type === 'Warning') recorder.warning(target, event.reason, event.message);
      else recorder.normal(target, event.reason, event.message);
    },
  };
}

/** The dispatcher of a role and the last status writes to run after its feed stops; the same for `dispatcher` and `standalone`. */
export function createDispatcher(role: Role, store: ConfigStore, policy: DispatchPolicy, allowPrivate: boolean,
  kube: { writer: StatusWriter; announcer: EventAnnouncer } | undefined): { dispatcher: Dispatcher; flushStatus: () => Promise<void> } {
  const status = new DeliveryStatusBook(kube?.writer, role.logger, kube?.announcer);
  const outbound = { agent: webhookAgent(allowPrivate), allowPrivate };
  const tokens = new OAuth2Tokens(outbound);
  const dispatcher = new Dispatcher({
    store, policy, status, logger: role.logger, metrics: createDispatcherMetrics(role.registry),
    send: (webhook, batchId, events) => sendBatch(webhook, batchId, events, tokens, outbound),
  });
  return { dispatcher, flushStatus: async () => {
    await status.stop();
    await outbound.agent.close();
  } };
}

export async function startDispatcher(config: DispatcherConfig, logger: Logger): Promise<{ role: Role; shutdown(): Promise<void> }> {
  const role = await Role.start({ name: 'dispatcher', logger, metricsHost: config.metricsHost, metricsPort: config.metricsPort });
  const store = await role.openConfig(config.config);
  const { dispatcher, flushStatus } = createDispatcher(role, store, config.policy, config.allowPrivate, await kubeStatus(config.config, logger));
  const kafka = createKafka({ connection: config.kafka, clientId: 'mtrelay-dispatcher', logger });
  const events = new KafkaEvents({
    kafka, topic: topicNames(config.topicPrefix).events, groupId: config.groupId, dispatcher, maxInFlight: config.maxInFlight, logger,
    onFatal: (error) => {
      logger.fatal({ err: error }, 'the Kafka consumer stopped for good; exiting');
      process.exit(1);
    },
  });
  // Alive and not ready while the brokers cannot be reached.
  await retryKafka('joining the events consumer group', () => events.start(), logger, (reason) => role.waiting(reason));
  role.readiness(() => (events.joined ? undefined : 'not in the events consumer group yet'));
  role.onStop('events consumer (posts in progress end, offsets of what is done are committed)', () => events.stop());
  role.onStop('webhook status (last writes)', flushStatus);
  role.started({ groupId: config.groupId }, 'dispatcher running');
  return { role, shutdown: () => role.shutdown() };
}
