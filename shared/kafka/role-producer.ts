// The idempotent producer of a role that only publishes (tracker, inbound): connected before
// the role listens, retried while the brokers cannot be reached (the role is alive but not
// ready meanwhile), and a readiness check that fails while it is disconnected.
import type { Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Role } from '../ops/role.ts';
import { retryKafka } from './topics.ts';

export async function connectRoleProducer(kafka: Kafka, role: Role, logger: Logger): Promise<Producer> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  let connected = false;
  producer.on(producer.events.CONNECT, () => (connected = true));
  producer.on(producer.events.DISCONNECT, () => (connected = false));
  await retryKafka('connecting the Kafka producer', () => producer.connect(), logger, (reason) => role.waiting(reason));
  role.readiness(() => (connected ? undefined : 'Kafka producer not connected'));
  return producer;
}
