// Reads a whole topic from its beginning and goes on following it, in every process that
// needs all of it (not a share): the suppression list in each deliverer, the usage counters
// in each relay. Resolves once it has caught up with the end the topic had at the start.
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';

export interface FollowOptions {
  kafka: Kafka;
  topic: string;
  /** The start of this follower's own consumer group (a fresh id is added): e.g. `mtrelay-suppressions`. */
  groupPrefix: string;
  onRecord(message: KafkaMessage, partition: number): void;
}

export async function followTopic(o: FollowOptions): Promise<Consumer> {
  const admin = o.kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(o.topic).finally(() => admin.disconnect());
  const pending = new Map(ends.filter((e) => BigInt(e.high) > 0n).map((e) => [e.partition, BigInt(e.high)]));
  // A group of its own: this process needs every record, not a share of them. It never
  // commits offsets, so nothing of the group outlives the process.
  const consumer = o.kafka.consumer({ groupId: `${o.groupPrefix}-${randomUUID()}` });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
  } catch (error) {
    await consumer.disconnect().catch(() => undefined); // the caller may try again with a new one
    throw error;
  }
  let caughtUp: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (caughtUp = resolve));
  if (pending.size === 0) caughtUp();
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      o.onRecord(message, partition);
      const end = pending.get(partition);
      if (end !== undefined && BigInt(message.offset) + 1n >= end) pending.delete(partition);
      if (pending.size === 0) caughtUp();
    },
  });
  await ready;
  return consumer;
}
