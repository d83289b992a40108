// What reached Kafka in the tracker benchmark: the events topic's records, counted, so that
// requests answered fast but never published cannot pass for throughput. Between phases the
// end offsets say how many records a phase added; at the end every record is read back and
// counted by its event type.
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Admin } from 'kafkajs';

export class EventCounter {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #admin: Admin;

  constructor(bootstrap: string, topic: string) {
    process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
    this.#kafka = new Kafka({ brokers: [bootstrap], clientId: 'bench-events', logLevel: logLevel.NOTHING });
    this.#topic = topic;
    this.#admin = this.#kafka.admin();
  }

  async connect(): Promise<void> {
    await this.#admin.connect();
  }

  /** Records in the topic: the sum of its partitions' end offsets (a fresh topic, no control records: the producer is idempotent, not transactional). */
  async records(): Promise<number> {
    const ends = await this.#admin.fetchTopicOffsets(this.#topic);
    return ends.reduce((sum, p) => sum + Number(p.high), 0);
  }

  /** Waits until the topic holds `expected` records (the tracker publishes after answering), or `timeoutMs` passed; returns the count. */
  async settle(expected: number, timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let count = await this.records();
    while (count < expected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      count = await this.records();
    }
    return count;
  }

  /** Reads every record from the start and counts them by the event's type. */
  async countByType(timeoutMs = 60_000): Promise<Record<string, number>> {
    const ends = await this.#admin.fetchTopicOffsets(this.#topic);
    const end = new Map(ends.map((p) => [p.partition, Number(p.high)]));
    const remaining = new Map(end);
    const counts: Record<string, number> = {};
    const consumer = this.#kafka.consumer({ groupId: `bench-${randomUUID()}`, maxBytes: 16 * 1024 * 1024 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: this.#topic, fromBeginning: true });
      let finish: () => void = () => undefined;
      const done = new Promise<void>((resolve) => (finish = resolve));
      const check = () => {
        if ([...remaining.values()].every((left) => left <= 0)) finish();
      };
      check();
      await consumer.run({
        eachBatch: async ({ batch }) => {
          for (const message of batch.messages) {
            const type = /"type":"([a-z_]+)"/.exec(message.value?.toString('latin1') ?? '')?.[1] ?? 'unreadable';
            counts[type] = (counts[type] ?? 0) + 1;
          }
          remaining.set(batch.partition, end.get(batch.partition)! - Number(batch.lastOffset()) - 1);
          check();
        },
      });
      const timer = setTimeout(finish, timeoutMs);
      await done;
      clearTimeout(timer);
      return counts;
    } finally {
      await consumer.disconnect();
    }
  }

  async close(): Promise<void> {
    await this.#admin.disconnect();
  }
}
