// Feeds the delivery core from Kafka: a consumer group over mtrelay.submissions and the
// retry topics, many records in flight per partition, and an offset committed only once
// every earlier record's outcome is durable (the core finishes a job only then).
import type { CompressionTypes, Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { recordHeaders } from '../shared/kafka/record-headers.ts';
import { topicNames } from '../shared/kafka/topics.ts';
import { DeliveryCore, type DeliveryCoreOptions } from './delivery-core.ts';
import { KafkaOutcomeSink, type KafkaJob } from './kafka-outcome-sink.ts';
import { InFlightGate, OffsetCommits } from '../shared/kafka/offset-commits.ts';
import { readRetryState } from './retry-record.ts';

export interface KafkaRuntimeOptions extends Omit<DeliveryCoreOptions<KafkaJob>, 'sink'> {
  kafka: Kafka;
  prefix: string;
  groupId: string;
  maxInFlight: number;
  maxMessageBytes: number;
  /** Compression of the retry records it produces (they carry the message). */
  compression: CompressionTypes;
  /**
   * The consumer stopped for good, or a record could not even be set aside: a pod that looks
   * healthy but consumes nothing, or an offset committed past an unhandled record, is worse than
   * a restart. Must not return (the process exits).
   */
  onFatal: (error: Error) => never;
}

function kafkaJob(topic: string, partition: number, message: KafkaMessage): KafkaJob {
  return {
    topic, partition, offset: message.offset,
    record: { key: message.key?.toString() ?? '', value: message.value ?? Buffer.alloc(0), headers: recordHeaders(message.headers) },
    original: { key: message.key, headers: message.headers },
  };
}

/** What a fetch waits for: this many bytes of records, or this long. */
const FETCH_MIN_BYTES = 256 * 1024;
const FETCH_MAX_WAIT_MS = 100;

export class KafkaDeliveryRuntime {
  readonly #o: KafkaRuntimeOptions;
  readonly #topics: ReturnType<typeof topicNames>;
  readonly #consumer: Consumer;
  readonly #producer: Producer;
  readonly #core: DeliveryCore<KafkaJob>;
  readonly #commits: OffsetCommits;
  readonly #gate: InFlightGate;
  #stopping = false;

  constructor(options: KafkaRuntimeOptions) {
    this.#o = options;
    this.#topics = topicNames(options.prefix, options.policy.rungs.map((r) => r.name));
    this.#consumer = options.kafka.consumer({
      groupId: options.groupId,
      maxBytesPerPartition: options.maxMessageBytes + 1024 * 1024,
      maxBytes: Math.max(64 * 1024 * 1024, options.maxMessageBytes * 2),
      sessionTimeout: 10_000, // a crashed deliverer's partitions move on within seconds
      // A fetch waits for a few records (or 100 ms) instead of returning with the first: at
      // everyday rates one fetch per record was most of the broker's and the consumer's work.
      minBytes: FETCH_MIN_BYTES,
      maxWaitTimeInMs: FETCH_MAX_WAIT_MS,
    });
    this.#producer = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    const sink = new KafkaOutcomeSink({ producer: this.#producer, prefix: options.prefix, topics: this.#topics, logger: options.logger, compression: options.compression });
    this.#core = new DeliveryCore({ ...options, sink });
    this.#commits = new OffsetCommits(this.#consumer, options.logger);
    this.#gate = new InFlightGate(() => this.#core.inFlight >= options.maxInFlight);
  }

  async start(): Promise<void> {
    await this.#producer.connect();
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: this.#subscribed(), fromBeginning: true });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, ({ payload }) => {
      this.#o.logger.info({ memberAssignment: payload.memberAssignment }, 'deliverer joined the consumer group');
    });
    this.#consumer.on(this.#consumer.events.CRASH, ({ payload }) => {
      // kafkajs restarts the consumer after most errors; when it will not, the process must.
      if (!payload.restart) this.#o.onFatal(payload.error);
    });
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: (payload) => this.#eachBatch(payload),
    });
    this.#commits.start(500);
  }

  #subscribed(): string[] {
    return [this.#topics.submissions, ...this.#topics.retries];
  }

  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, pause }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    this.#o.metrics.consumerLag.set({ topic, partition: String(partition) }, Number(batch.offsetLag()));
    const isRetry = topic !== this.#topics.submissions;
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.#stopping) return;
      const tracker = this.#commits.tracker;
      if (tracker.isStarted(topic, partition, message.offset)) {
        resolveOffset(message.offset); // fetched again after a rebalance; already ours
        continue;
      }
      const job = kafkaJob(topic, partition, message);
      if (isRetry) {
        const wait = readRetryState(job.record.headers).notBefore - Date.now();
        if (wait > 0) {
          // Retry topics are in due order: wait for this record, then fetch again from it.
          const resume = pause();
          setTimeout(resume, Math.min(wait, 60_000)).unref();
          return;
        }
      }
      await this.#gate.wait(heartbeat);
      if (!isRunning() || isStale() || this.#stopping) return;
      tracker.start(topic, partition, message.offset);
      resolveOffset(message.offset); // fetch on; the commit still waits for the outcome
      void this.#core.run(job)
        // Not even set aside: the offset must not pass it. The process stops; the record comes back to the group.
        .catch((error: unknown) => this.#o.onFatal(new Error(`record ${topic}/${partition}/${message.offset} could not be dead-lettered: ${(error as Error).message}`, { cause: error })))
        .finally(() => {
          tracker.finish(topic, partition, message.offset);
          this.#gate.wake();
        });
    }
    await heartbeat();
  }

  /**
   * Drain: stop taking records but stay in the group, let deliveries in flight finish and
   * their outcomes reach Kafka, commit, and only then leave the group.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#gate.stop();
    this.#consumer.pause(this.#subscribed().map((topic) => ({ topic })));
    while (this.#core.inFlight > 0) await new Promise((r) => setTimeout(r, 50));
    await this.#commits.stop();
    await this.#consumer.disconnect();
    await this.#producer.disconnect();
  }
}
