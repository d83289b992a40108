// Reads records back from the real broker, to check what the relay stored.
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type IHeaders } from 'kafkajs';
import { pino } from 'pino';
import { DEFAULT_RETRY_DELAYS, ensureTopicsWhenReachable, retryKafka } from '../../shared/kafka/topics.ts';

export interface StoredRecord {
  key: string | undefined;
  value: Buffer;
  headers: IHeaders;
  partition: number;
  offset: string;
}

export class KafkaReader {
  readonly records: StoredRecord[] = [];
  #consumer: Consumer;
  #waiters: (() => void)[] = [];

  private constructor(consumer: Consumer) {
    this.#consumer = consumer;
  }

  /** With `createTopics` (the default) the project's topics are made first, so the reader may start before any relay. */
  static async start(bootstrap: string, topic = 'mtrelay.submissions', createTopics = true): Promise<KafkaReader> {
    process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
    const kafka = new Kafka({ brokers: [bootstrap], clientId: 'test-reader', logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `test-${randomUUID()}`, maxBytes: 64 * 1024 * 1024, maxBytesPerPartition: 64 * 1024 * 1024 });
    const reader = new KafkaReader(consumer);
    // As the roles do: retried while a busy broker has no leader yet for topics just created.
    if (createTopics) {
      await ensureTopicsWhenReachable(kafka, { prefix: topic.split('.')[0]!, partitions: 2, replicationFactor: 1, maxMessageBytes: 32 * 1024 * 1024, retryDelays: DEFAULT_RETRY_DELAYS }, pino({ level: 'silent' }));
    }
    await consumer.connect();
    await retryKafka(`subscribing to ${topic}`, () => consumer.subscribe({ topic, fromBeginning: true }), pino({ level: 'silent' }));
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        reader.records.push({ key: message.key?.toString(), value: message.value ?? Buffer.alloc(0), headers: message.headers ?? {}, partition, offset: message.offset });
        for (const w of reader.#waiters.splice(0)) w();
      },
    });
    return reader;
  }

  header(record: StoredRecord, name: string): string | undefined {
    const v = record.headers[name];
    const first = Array.isArray(v) ? v[0] : v;
    return first === undefined ? undefined : first.toString();
  }

  byTransmission(id: string): StoredRecord[] {
    return this.records.filter((r) => this.header(r, 'mtrelay-transmission-id') === id);
  }

  async waitFor(id: string, timeoutMs = 15_000): Promise<StoredRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.byTransmission(id)[0];
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`transmission ${id} not found in Kafka within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.#waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  async stop(): Promise<void> {
    await this.#consumer.disconnect();
  }
}

/** Partitions of `topic` whose offset committed by `groupId` is behind the end: what a new member would deliver again. */
export async function uncommitted(bootstrap: string, groupId: string, topic: string): Promise<{ partition: number; committed: string; end: string }[]> {
  const admin = new Kafka({ brokers: [bootstrap], clientId: 'test-offsets', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const byPartition = new Map((committed?.partitions ?? []).map((p) => [p.partition, p.offset]));
    return ends
      .map((e) => ({ partition: e.partition, committed: byPartition.get(e.partition) ?? '-1', end: e.high }))
      .filter((p) => p.end !== '0' && BigInt(p.committed) < BigInt(p.end));
  } finally {
    await admin.disconnect();
  }
}
