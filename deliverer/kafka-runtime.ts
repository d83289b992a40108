// Runs deliveries from Kafka: a consumer group over mtrelay.submissions and the retry
// topics, many records in flight per partition, and an offset committed only once every
// earlier record's outcome (events, retry, suppression) is acknowledged by the broker.
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { readSubmission, type Submission } from '../shared/kafka/submission-record.ts';
import { topicNames } from '../shared/kafka/topics.ts';
import type { Deliverer } from './delivery.ts';
import { EventBatcher } from './event-batcher.ts';
import { messageFacts } from './message-facts.ts';
import type { DelivererMetrics } from './metrics.ts';
import { OffsetTracker } from './offset-tracker.ts';
import { planOutcomes, type OutcomePlan } from './outcomes.ts';
import { reportOutcomes } from './report-outcomes.ts';
import { readRetryState, retryHeaders } from './retry-record.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { suppressionKey, type SuppressionList } from './suppression-list.ts';

/** Events per produce request stay well under the broker's default 1 MB record batch limit. */
const EVENT_REQUEST_BYTES = 512 * 1024;

export interface KafkaRuntimeOptions {
  kafka: Kafka;
  prefix: string;
  policy: RetryPolicy;
  deliverer: Deliverer;
  suppressions: SuppressionList;
  metrics: DelivererMetrics;
  logger: Logger;
  groupId: string;
  maxInFlight: number;
  maxMessageBytes: number;
}

export class KafkaDeliveryRuntime {
  readonly #o: KafkaRuntimeOptions;
  readonly #topics: ReturnType<typeof topicNames>;
  readonly #tracker = new OffsetTracker();
  readonly #consumer: Consumer;
  readonly #producer: Producer;
  readonly #events: EventBatcher;
  readonly #slots: (() => void)[] = [];
  #commitTimer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #stopping = false;
  #committing = false;

  constructor(options: KafkaRuntimeOptions) {
    this.#o = options;
    this.#topics = topicNames(options.prefix, options.policy.rungs.map((r) => r.name));
    this.#consumer = options.kafka.consumer({
      groupId: options.groupId,
      maxBytesPerPartition: options.maxMessageBytes + 1024 * 1024,
      maxBytes: Math.max(64 * 1024 * 1024, options.maxMessageBytes * 2),
      sessionTimeout: 10_000, // a crashed deliverer's partitions move on within seconds
    });
    this.#producer = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    this.#events = new EventBatcher(this.#producer, this.#topics.events, { lingerMs: 5, maxBytes: EVENT_REQUEST_BYTES });
  }

  async start(): Promise<void> {
    await this.#producer.connect();
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: this.#subscribed(), fromBeginning: true });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, ({ payload }) => {
      this.#o.logger.info({ memberAssignment: payload.memberAssignment }, 'deliverer joined the consumer group');
    });
    this.#consumer.on(this.#consumer.events.CRASH, ({ payload }) => {
      // kafkajs restarts the consumer after most errors; when it will not, a pod that looks
      // healthy but consumes nothing is worse than a restart.
      if (payload.restart) return;
      this.#o.logger.fatal({ err: { message: payload.error.message } }, 'the Kafka consumer stopped for good; exiting');
      process.exit(1);
    });
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: (payload) => this.#eachBatch(payload),
    });
    this.#commitTimer = setInterval(() => void this.#commit(), 500);
  }

  #subscribed(): string[] {
    return [this.#topics.submissions, ...this.#topics.retries];
  }

  /** Waits for a free slot, heartbeating meanwhile so the group does not evict a busy member. */
  async #slot(heartbeat: () => Promise<void>): Promise<void> {
    while (this.#inFlight >= this.#o.maxInFlight && !this.#stopping) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 3000);
        this.#slots.push(() => { clearTimeout(timer); resolve(); });
      });
      await heartbeat().catch(() => undefined);
    }
  }

  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, pause }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    this.#o.metrics.consumerLag.set({ topic, partition: String(partition) }, Number(batch.offsetLag()));
    const isRetry = topic !== this.#topics.submissions;
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.#stopping) return;
      if (this.#tracker.isStarted(topic, partition, message.offset)) {
        resolveOffset(message.offset); // fetched again after a rebalance; already ours
        continue;
      }
      if (isRetry) {
        const wait = readRetryState(message.headers).notBefore - Date.now();
        if (wait > 0) {
          // Retry topics are in due order: wait for this record, then fetch again from it.
          const resume = pause();
          setTimeout(resume, Math.min(wait, 60_000)).unref();
          return;
        }
      }
      await this.#slot(heartbeat);
      if (!isRunning() || isStale() || this.#stopping) return;
      this.#tracker.start(topic, partition, message.offset);
      resolveOffset(message.offset); // fetch on; the commit still waits for the outcome
      this.#inFlight++;
      this.#o.metrics.inFlight.set(this.#inFlight);
      void this.#process(topic, message)
        .catch((error: Error) => this.#failed(topic, message, error))
        .finally(() => {
          this.#tracker.finish(topic, partition, message.offset);
          this.#inFlight--;
          this.#o.metrics.inFlight.set(this.#inFlight);
          for (const wake of this.#slots.splice(0)) wake();
        });
    }
    await heartbeat();
  }

  async #process(topic: string, message: KafkaMessage): Promise<void> {
    let submission: Submission;
    try {
      submission = readSubmission(message.headers);
    } catch (error) {
      await this.#deadLetter(topic, message, (error as Error).message);
      return;
    }
    const raw = message.value ?? Buffer.alloc(0);
    const retry = topic === this.#topics.submissions ? { attempts: 0 } : readRetryState(message.headers);
    const outcomes = await this.#o.deliverer.attempt({ submission, raw, attempt: retry.attempts, ...('only' in retry && retry.only ? { only: retry.only } : {}) });
    const now = new Date();
    const plan = planOutcomes({ submission, facts: messageFacts(raw), attemptsBefore: retry.attempts, outcomes, policy: this.#o.policy, now });
    await this.#durably(() => this.#write(plan, submission, raw, message.headers));
    reportOutcomes(plan, submission, outcomes, now, this.#o.metrics, this.#o.logger);
  }

  /** An attempt that failed in an unexpected way must not pass silently: the record goes to the dead-letter topic. */
  async #failed(topic: string, message: KafkaMessage, error: Error): Promise<void> {
    this.#o.logger.error({ topic, offset: message.offset, err: { message: error.message, stack: error.stack } }, 'delivery attempt failed unexpectedly');
    await this.#deadLetter(topic, message, `delivery attempt failed: ${error.message}`).catch((e: Error) =>
      this.#o.logger.fatal({ topic, offset: message.offset, err: { message: e.message } }, 'record could not be dead-lettered'));
  }

  /**
   * Retry, suppressions and events of one attempt, all acks=all. Events travel with those of
   * other records finishing at the same time (EventBatcher). A partial write followed by a
   * redelivery repeats events, never loses outcomes.
   */
  async #write(plan: OutcomePlan, submission: Submission, raw: Buffer, headers: IHeaders | undefined): Promise<void> {
    if (plan.retry) {
      await this.#producer.send({ topic: `${this.#o.prefix}.retry.${plan.retry.rung}`, acks: -1,
        messages: [{ key: submission.transmissionId, value: raw, headers: retryHeaders(headers, plan.retry) }] });
    }
    if (plan.suppressions.length) {
      await this.#producer.send({ topic: this.#topics.suppressions, acks: -1,
        messages: plan.suppressions.map((s) => ({ key: suppressionKey(s.namespace, s.address), value: JSON.stringify(s) })) });
      for (const s of plan.suppressions) this.#o.suppressions.add(s);
    }
    // Bounded requests: a thousand recipients' events at once would exceed the broker's limit.
    let chunk: { key: string; value: string }[] = [];
    let bytes = 0;
    const sends: Promise<void>[] = [];
    for (const event of plan.events) {
      const value = JSON.stringify(event);
      if (bytes + value.length > EVENT_REQUEST_BYTES) {
        sends.push(this.#events.send(chunk));
        chunk = [];
        bytes = 0;
      }
      chunk.push({ key: submission.transmissionId, value });
      bytes += value.length;
    }
    if (chunk.length) sends.push(this.#events.send(chunk));
    await Promise.all(sends);
  }

  async #deadLetter(topic: string, message: KafkaMessage, reason: string): Promise<void> {
    this.#o.logger.error({ topic, offset: message.offset, reason }, 'record sent to the dead-letter topic');
    this.#o.metrics.deadLetters.inc();
    await this.#durably(() => this.#producer.send({ topic: this.#topics.deadLetter, acks: -1, messages: [{
      key: message.key, value: message.value, headers: { ...message.headers, 'mtrelay-dead-letter-reason': reason, 'mtrelay-dead-letter-topic': topic },
    }] }).then(() => undefined));
  }

  /**
   * Outcomes must become durable before the offset moves: retry while the broker may still
   * take them. An error the broker will always give (a record too large, say) is thrown.
   */
  async #durably(write: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await write();
        return;
      } catch (error) {
        if ((error as { retriable?: boolean }).retriable === false) throw error;
        this.#o.logger.warn({ err: { message: (error as Error).message }, attempt }, 'writing to Kafka failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt)));
      }
    }
  }

  async #commit(): Promise<void> {
    if (this.#committing) return;
    const offsets = this.#tracker.committable();
    if (!offsets.length) return;
    this.#committing = true;
    try {
      await this.#consumer.commitOffsets(offsets);
      this.#tracker.markCommitted(offsets);
    } catch (error) {
      // A rebalance took the partition; its new owner redelivers from the last commit.
      this.#o.logger.warn({ err: { message: (error as Error).message } }, 'offset commit failed');
    } finally {
      this.#committing = false;
    }
  }

  /**
   * Drain: stop taking records but stay in the group, let deliveries in flight finish and
   * their outcomes reach Kafka, commit, and only then leave the group.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const wake of this.#slots.splice(0)) wake();
    this.#consumer.pause(this.#subscribed().map((topic) => ({ topic })));
    while (this.#inFlight > 0) await new Promise((r) => setTimeout(r, 50));
    clearInterval(this.#commitTimer);
    while (this.#committing) await new Promise((r) => setTimeout(r, 10));
    await this.#commit();
    await this.#consumer.disconnect();
    await this.#producer.disconnect();
  }
}
