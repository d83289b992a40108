// The topics mtrelay uses, and their configs. The project creates them itself with the
// admin client; broker auto-create is never relied on (it would pick the wrong limits).
import kafkajs, { type Admin, type ITopicConfig, type Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { MtrelayError } from '../errors.ts';

const { ConfigResourceTypes } = kafkajs; // CommonJS: not every export is a named ESM export

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
const USAGE_RETENTION_MS = 25 * 60 * 60 * 1000;

export function topicNames(prefix: string, retryDelays = DEFAULT_RETRY_DELAYS) {
  return {
    submissions: `${prefix}.submissions`,
    retries: retryDelays.map((d) => `${prefix}.retry.${d}`),
    events: `${prefix}.events`,
    suppressions: `${prefix}.suppressions`,
    usage: `${prefix}.usage`,
    deadLetter: `${prefix}.dead-letter`,
  };
}

/** The settings of every topic, for a given replication (the broker's default when the layout says -1). */
export function topicConfigs(layout: TopicLayout, replication = layout.replicationFactor): ITopicConfig[] {
  const names = topicNames(layout.prefix, layout.retryDelays);
  const maxBytes = String(requiredMaxMessageBytes(layout));
  const entries = (config: Record<string, string>) => Object.entries(config).map(([name, value]) => ({ name, value }));
  const base = { numPartitions: layout.partitions, replicationFactor: layout.replicationFactor };
  const messages = entries({
    'max.message.bytes': maxBytes,
    'retention.ms': String(7 * DAY_MS),
    'cleanup.policy': 'delete',
    // acks=all means "all in-sync replicas": with three or more replicas, demand two, so one
    // broker alone never acknowledges a message. With fewer, the broker's own setting stays.
    ...(replication >= 3 ? { 'min.insync.replicas': '2' } : {}),
  });
  return [
    { topic: names.submissions, ...base, configEntries: messages },
    ...names.retries.map((topic) => ({ topic, ...base, configEntries: messages })),
    { topic: names.deadLetter, ...base, configEntries: entries({ 'max.message.bytes': maxBytes, 'retention.ms': String(30 * DAY_MS) }) },
    { topic: names.events, ...base, configEntries: entries({ 'retention.ms': String(14 * DAY_MS) }) },
    { topic: names.suppressions, ...base, configEntries: entries({ 'cleanup.policy': 'compact', 'retention.ms': '-1' }) },
    // Usage counts (shared/usage): the latest count of each bucket, kept a little longer than
    // the longest window (24 h and a bucket); hourly segments let old ones go.
    { topic: names.usage, ...base, configEntries: entries({ 'cleanup.policy': 'compact,delete', 'retention.ms': String(USAGE_RETENTION_MS), 'segment.ms': String(60 * 60 * 1000) }) },
  ];
}

/** Records are the message plus headers: the topics of messages must take this much. */
export function requiredMaxMessageBytes(layout: Pick<TopicLayout, 'maxMessageBytes'>): number {
  return layout.maxMessageBytes + RECORD_OVERHEAD_BYTES;
}

/** A topic set-up that cannot go on by itself: someone must create topics or grant rights. */
export class TopicSetupError extends MtrelayError {
  constructor(message: string) {
    super('MTR_ERR_TOPICS', message);
  }
}

/** The replication topics get: the layout's, or the broker's default.replication.factor when that is -1. */
export async function effectiveReplication(admin: Admin, layout: TopicLayout): Promise<number> {
  if (layout.replicationFactor !== -1) return layout.replicationFactor;
  const { brokers } = await admin.describeCluster();
  const broker = brokers[0];
  if (!broker) return 1;
  const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [
    { type: ConfigResourceTypes.BROKER, name: String(broker.nodeId), configNames: ['default.replication.factor'] },
  ] });
  return Number(resources[0]?.configEntries.find((e) => e.configName === 'default.replication.factor')?.configValue ?? 1);
}

/** How to create a topic by hand, for messages that ask someone to. */
function describeTopic(topic: ITopicConfig): string {
  return `${topic.topic} (${(topic.configEntries ?? []).map((e) => `${e.name}=${e.value}`).join(', ')})`;
}

/**
 * Creates whichever of the topics are missing (unless `create` is false); existing ones are
 * left as they are (checkTopics says what is wrong with them).
 */
export async function ensureTopics(admin: Admin, layout: TopicLayout, logger: Logger, create = true): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const configs = topicConfigs(layout, await effectiveReplication(admin, layout));
  const missing = configs.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return [];
  if (!create) throw new TopicSetupError(`topics missing, and creating them is switched off: create ${missing.map(describeTopic).join('; ')}`);
  try {
    await admin.createTopics({ topics: missing, waitForLeaders: true });
  } catch (error) {
    const type = (error as { type?: string }).type ?? '';
    if (/AUTHORIZATION_FAILED|POLICY_VIOLATION/.test(type) || /not authorized|policy/i.test((error as Error).message)) {
      throw new TopicSetupError(`the broker refused to create topics (${type || (error as Error).message}); create them yourself, or grant this principal Create on them: ${missing.map(describeTopic).join('; ')}`);
    }
    throw error;
  }
  logger.info({ topics: missing.map((t) => t.topic) }, 'created Kafka topics');
  return missing.map((t) => t.topic);
}

/**
 * Runs `attempt` until it succeeds, with a growing pause (up to 10 s) between tries: topics
 * another pod has just created may have no leader yet, and a broker may be restarting.
 */
export async function retryKafka<T>(what: string, attempt: () => Promise<T>, logger: Logger, waiting?: (reason: string) => void): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      logger.warn({ err: error, attempt: n }, `${what} failed; retrying`);
      waiting?.(`${what}: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * n)));
    }
  }
}

/**
 * Creates the missing topics, retrying until the broker answers: in a fresh cluster Kafka may
 * start after mtrelay. Every role that writes to Kafka starts this way; it is not ready
 * meanwhile, and `waiting` says why (a refusal names what to create or grant).
 */
export async function ensureTopicsWhenReachable(kafka: Kafka, layout: TopicLayout, logger: Logger, options: { create?: boolean; waiting?: (reason: string) => void } = {}): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await ensureTopics(admin, layout, logger, options.create ?? true);
      return;
    } catch (error) {
      const refused = error instanceof TopicSetupError;
      logger[refused ? 'error' : 'warn']({ err: error, attempt }, refused ? 'Kafka topics cannot be set up; retrying' : 'cannot reach Kafka to set up topics yet; retrying');
      options.waiting?.(refused ? (error as Error).message : `waiting for Kafka: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * attempt)));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
