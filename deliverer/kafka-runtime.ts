// Runs deliveries from Kafka: a consumer group over mtrelay.submissions and the retry
// topics, many records in flight per partition, and an offset committed only once every
// earlier record's outcome (events, retry, suppression) is acknowledged by the broker.
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage, Kafka, Producer, TopicMessages } from 'kafkajs';
import type { Logger } from 'pino';
import { readSubmission, type Submission } from '../shared/kafka/submission-record.ts';
import { topicNames } from '../shared/kafka/topics.ts';
import type { Deliverer } from './delivery.ts';
import { messageFacts } from './message-facts.ts';
import type { DelivererMetrics } from './metrics.ts';
import { OffsetTracker } from './offset-tracker.ts';
import { planOutcomes, type OutcomePlan } from './outcomes.ts';
import { reportOutcomes } from './report-outcomes.ts';
import { readRetryState, retryHeaders } from './retry-record.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { suppressionKey, type SuppressionList } from './suppression-list.ts';

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
  readonly #slots: (() => void)[] = [];
  #commitTimer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #stopping = false;

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
  }

  async start(): Promise<void> {
    await this.#producer.connect();
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: [this.#topics.submissions, ...this.#topics.retries], fromBeginning: true });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, ({ payload }) => {
      this.#o.logger.info({ memberAssignment: payload.memberAssignment }, 'deliverer joined the consumer group');
    });
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: (payload) => this.#eachBatch(payload),
    });
    this.#commitTimer = setInterval(() => void this.#commit(), 500);
  }

  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, pause }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    this.#o.metrics.consumerLag.set({ topic, partition: String(partition) }, Number(batch.offsetLag()));
    const isRetry = topic !== this.#topics.submissions;
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.#stopping) return;
      if (isRetry) {
        const wait = readRetryState(message.headers).notBefore - Date.now();
        if (wait > 0) {
          // Retry topics are in due order: wait for this record, then fetch again from it.
          const resume = pause();
          setTimeout(resume, Math.min(wait, 60_000)).unref();
          return;
        }
      }
      while (this.#inFlight >= this.#o.maxInFlight) {
        await new Promise<void>((resolve) => this.#slots.push(resolve));
        await heartbeat();
      }
      this.#tracker.start(topic, partition, message.offset);
      resolveOffset(message.offset); // fetch on; the commit still waits for the outcome
      this.#inFlight++;
      this.#o.metrics.inFlight.set(this.#inFlight);
      void this.#process(topic, message).finally(() => {
        this.#tracker.finish(topic, partition, message.offset);
        this.#inFlight--;
        this.#o.metrics.inFlight.set(this.#inFlight);
        this.#slots.shift()?.();
      });
    }
    await heartbeat();
  }

  async #process(topic: string, message: KafkaMessage): Promise<void> {
    let submission: Submission;
    try {
      submission = readSubmission(message.headers);
    } catch (error) {
      await this.#durably(() => this.#deadLetter(topic, message, (error as Error).message));
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

  /** Events, retry and suppressions of one attempt, in one acks=all request. */
  async #write(plan: OutcomePlan, submission: Submission, raw: Buffer, headers: IHeaders | undefined): Promise<void> {
    const topicMessages: TopicMessages[] = [{
      topic: this.#topics.events,
      messages: plan.events.map((e) => ({ key: submission.transmissionId, value: JSON.stringify(e) })),
    }];
    if (plan.retry) {
      topicMessages.push({
        topic: `${this.#o.prefix}.retry.${plan.retry.rung}`,
        messages: [{ key: submission.transmissionId, value: raw, headers: retryHeaders(headers, plan.retry) }],
      });
    }
    if (plan.suppressions.length) {
      topicMessages.push({
        topic: this.#topics.suppressions,
        messages: plan.suppressions.map((s) => ({ key: suppressionKey(s.namespace, s.address), value: JSON.stringify(s) })),
      });
    }
    await this.#producer.sendBatch({ topicMessages, acks: -1 });
    for (const s of plan.suppressions) this.#o.suppressions.add(s);
  }

  async #deadLetter(topic: string, message: KafkaMessage, reason: string): Promise<void> {
    this.#o.logger.error({ topic, offset: message.offset, reason }, 'unreadable record sent to the dead-letter topic');
    this.#o.metrics.deadLetters.inc();
    await this.#producer.send({ topic: this.#topics.deadLetter, acks: -1, messages: [{
      key: message.key, value: message.value, headers: { ...message.headers, 'mtrelay-dead-letter-reason': reason, 'mtrelay-dead-letter-topic': topic },
    }] });
  }

  /** Outcomes must become durable before the offset moves: retry until the broker takes them. */
  async #durably(write: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await write();
        return;
      } catch (error) {
        this.#o.logger.warn({ err: { message: (error as Error).message }, attempt }, 'writing outcomes to Kafka failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt)));
      }
    }
  }

  async #commit(): Promise<void> {
    const offsets = this.#tracker.committable();
    if (!offsets.length) return;
    try {
      await this.#consumer.commitOffsets(offsets);
    } catch (error) {
      // A rebalance took the partition; its new owner redelivers from the last commit.
      this.#o.logger.warn({ err: { message: (error as Error).message } }, 'offset commit failed');
    }
  }

  /** Stops fetching, lets deliveries in flight finish, commits, disconnects. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#consumer.stop();
    while (this.#inFlight > 0) await new Promise((r) => setTimeout(r, 50));
    clearInterval(this.#commitTimer);
    await this.#commit();
    await this.#consumer.disconnect();
    await this.#producer.disconnect();
  }
}
