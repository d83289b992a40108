// Fills the cluster's events store from mtrelay.events: a consumer group of the API pods, each
// batch inserted in one statement and its offset committed only after the insert, so every
// event is stored at least once and (inserts being idempotent) exactly once in the table.
// While the database cannot be reached, the batch is retried and nothing is committed.
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { eventRow, type EventRow } from './event-rows.ts';
import type { EventsStoreMetrics } from './metrics.ts';

export interface EventsConsumerOptions {
  kafka: Kafka;
  topic: string;
  groupId: string;
  store: { insert(rows: EventRow[]): Promise<number> };
  metrics: EventsStoreMetrics;
  logger: Logger;
  onFatal: (error: Error) => never;
}

export class EventsConsumer {
  readonly #o: EventsConsumerOptions;
  readonly #consumer: Consumer;
  #stopping = false;
  #joined = false;

  constructor(options: EventsConsumerOptions) {
    this.#o = options;
    this.#consumer = options.kafka.consumer({ groupId: options.groupId, sessionTimeout: 30_000, minBytes: 64 * 1024, maxWaitTimeInMs: 250 });
  }

  async start(): Promise<void> {
    await this.#consumer.connect();
    // A new store takes the topic's whole retention: every event still there is searchable.
    await this.#consumer.subscribe({ topics: [this.#o.topic], fromBeginning: true });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => {
      this.#joined = true;
    });
    this.#consumer.on(this.#consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) this.#o.onFatal(payload.error);
    });
    await this.#consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.#eachBatch(payload) });
  }

  get joined(): boolean {
    return this.#joined;
  }

  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!batch.messages.length) return;
    const rows: EventRow[] = [];
    for (const message of batch.messages) {
      const row = eventRow(message.value?.toString('utf8') ?? '');
      if (row) rows.push(row);
      else this.#o.logger.warn({ topic: batch.topic, partition: batch.partition, offset: message.offset }, 'skipped a record that is not an event');
    }
    for (let attempt = 1; ; attempt++) {
      if (!isRunning() || isStale() || this.#stopping) return;
      const stop = this.#o.metrics.storeSeconds.startTimer();
      try {
        const added = await this.#o.store.insert(rows);
        stop();
        this.#o.metrics.eventsStored.inc(added);
        this.#o.metrics.storeUp.set(1);
        break;
      } catch (error) {
        this.#o.metrics.storeFailures.inc();
        this.#o.metrics.storeUp.set(0);
        this.#o.logger.warn({ err: error, attempt, events: rows.length }, 'storing events failed; retrying (nothing is committed meanwhile)');
        await heartbeat();
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * attempt)));
      }
    }
    resolveOffset(batch.lastOffset());
    const next = String(BigInt(batch.lastOffset()) + 1n);
    await this.#consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
    await heartbeat();
  }

  /** Drain: the batch being stored finishes and is committed; then leave the group. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#consumer.disconnect();
  }
}
