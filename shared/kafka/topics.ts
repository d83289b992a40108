// The topics mtrelay uses, and their configs. The project creates them itself with the
// admin client; broker auto-create is never relied on (it would pick the wrong limits).
import type { Admin, ITopicConfig, Kafka } from 'kafkajs';
import type { Logger } from 'pino';

export interface TopicLayout {
  prefix: string;
  partitions: number;
  /** -1 takes the broker's default.replication.factor. */
  replicationFactor: number;
  /** Largest message the relay accepts (SMTP SIZE); records may be this plus headers. */
  maxMessageBytes: number;
  /** Delays of the retry ladder, e.g. ['1m', '5m', '15m', '1h', '4h']. */
  retryDelays: string[];
}

export const DEFAULT_RETRY_DELAYS = ['1m', '5m', '15m', '1h', '4h'];
/** Room for record headers and batch overhead on top of the message itself. */
export const RECORD_OVERHEAD_BYTES = 256 * 1024;

const DAY_MS = 24 * 60 * 60 * 1000;

export function topicNames(prefix: string, retryDelays = DEFAULT_RETRY_DELAYS) {
  return {
    submissions: `${prefix}.submissions`,
    retries: retryDelays.map((d) => `${prefix}.retry.${d}`),
    events: `${prefix}.events`,
    suppressions: `${prefix}.suppressions`,
    deadLetter: `${prefix}.dead-letter`,
  };
}

export function topicConfigs(layout: TopicLayout): ITopicConfig[] {
  const names = topicNames(layout.prefix, layout.retryDelays);
  const maxBytes = String(layout.maxMessageBytes + RECORD_OVERHEAD_BYTES);
  const entries = (config: Record<string, string>) => Object.entries(config).map(([name, value]) => ({ name, value }));
  const base = { numPartitions: layout.partitions, replicationFactor: layout.replicationFactor };
  const messages = entries({
    'max.message.bytes': maxBytes,
    'retention.ms': String(7 * DAY_MS),
    'cleanup.policy': 'delete',
    // acks=all means "all in-sync replicas": with three or more, demand two. With fewer, or
    // the broker's default replication, the broker's own setting stays.
    ...(layout.replicationFactor >= 3 ? { 'min.insync.replicas': '2' } : {}),
  });
  return [
    { topic: names.submissions, ...base, configEntries: messages },
    ...names.retries.map((topic) => ({ topic, ...base, configEntries: messages })),
    { topic: names.deadLetter, ...base, configEntries: entries({ 'max.message.bytes': maxBytes, 'retention.ms': String(30 * DAY_MS) }) },
    { topic: names.events, ...base, configEntries: entries({ 'retention.ms': String(14 * DAY_MS) }) },
    { topic: names.suppressions, ...base, configEntries: entries({ 'cleanup.policy': 'compact', 'retention.ms': '-1' }) },
  ];
}

/** Creates whichever of the topics are missing; existing ones are left as they are. */
export async function ensureTopics(admin: Admin, layout: TopicLayout, logger: Logger): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = topicConfigs(layout).filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return [];
  await admin.createTopics({ topics: missing, waitForLeaders: true });
  logger.info({ topics: missing.map((t) => t.topic) }, 'created Kafka topics');
  return missing.map((t) => t.topic);
}

/**
 * Creates the missing topics, retrying until the broker answers: in a fresh cluster Kafka may
 * start after mtrelay. Every role that writes to Kafka starts this way; it is not ready meanwhile.
 */
export async function ensureTopicsWhenReachable(kafka: Kafka, layout: TopicLayout, logger: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await ensureTopics(admin, layout, logger);
      return;
    } catch (error) {
      logger.warn({ err: error, attempt }, 'cannot create Kafka topics yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * attempt)));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
