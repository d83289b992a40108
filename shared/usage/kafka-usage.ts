// The usage counts of a fleet of relays, shared through the compacted topic `<prefix>.usage`:
// each relay writes its own buckets (keyed by counter, source and bucket, so compaction keeps
// the latest count of each) and follows everyone's from the beginning. A relay reads the
// topic before it opens its ports, so a restart does not reset a limit.
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { followTopic } from '../kafka/follow-topic.ts';
import type { UsageCounters, UsageRecord } from './usage-counters.ts';
import { UsageSync } from './usage-sync.ts';

export interface KafkaUsageOptions {
  kafka: Kafka;
  topic: string;
  counters: UsageCounters;
  logger: Logger;
  onPublished?(records: number): void;
  onFailed?(): void;
  /** Which of the fleet's counters this process keeps (default all): a deliverer needs only its own kind. */
  accept?(record: UsageRecord): boolean;
}

export const usageKey = (r: UsageRecord) => `${r.counter}|${r.source}|${r.start}`;

/** A record of the topic, or undefined when it is not one (skipped: one bad record must not stop a relay). */
export function parseUsageRecord(value: Buffer | null): UsageRecord | undefined {
  if (!value) return undefined;
  try {
    const r = JSON.parse(value.toString()) as Partial<UsageRecord>;
    const numbers = [r.start, r.width, r.window, r.count].every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0);
    return typeof r.counter === 'string' && typeof r.source === 'string' && numbers && r.width! > 0 ? (r as UsageRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Loads the fleet's counts (resolves once caught up), then follows them and publishes this relay's own every second. */
export async function startKafkaUsage(o: KafkaUsageOptions): Promise<{ stop(): Promise<void> }> {
  const producer = o.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const consumer = await followTopic({
    kafka: o.kafka, topic: o.topic, groupPrefix: 'mtrelay-usage',
    onRecord: (message: KafkaMessage) => {
      const record = parseUsageRecord(message.value);
      if (record && (o.accept?.(record) ?? true)) o.counters.apply(record);
    },
  }).catch(async (error: unknown) => {
    await producer.disconnect().catch(() => undefined); // the caller may try again with new ones
    throw error;
  });
  const sync = new UsageSync({
    counters: o.counters, logger: o.logger, onPublished: o.onPublished, onFailed: o.onFailed,
    publish: async (records) => {
      await producer.send({ topic: o.topic, acks: -1, messages: records.map((r) => ({ key: usageKey(r), value: JSON.stringify(r) })) });
    },
  });
  sync.start();
  return {
    stop: async () => {
      await sync.stop();
      await Promise.all([producer.disconnect(), consumer.disconnect()]);
    },
  };
}
