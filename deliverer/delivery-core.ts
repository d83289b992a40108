// One delivery job, whatever queue it came from: read the record, attempt delivery, plan what
// the outcomes become (events, a retry, suppressions), make that durable through the
// runtime's outcome sink, and only then report. The Kafka runtime and standalone mode differ
// only in how they fetch and acknowledge jobs and in their sink (a Kafka produce batch, an
// SQLite transaction); everything between is here, once.
import type { Logger } from 'pino';
import { hasCode } from '../shared/errors.ts';
import type { MessageEvent } from '../shared/events.ts';
import type { QueueRecord } from '../shared/queue.ts';
import { readSubmission } from '../shared/submission-record.ts';
import type { Deliverer } from './delivery.ts';
import { messageFacts } from './message-facts.ts';
import type { DelivererMetrics } from './metrics.ts';
import { planOutcomes } from './outcomes.ts';
import { reportOutcomes } from './report-outcomes.ts';
import { readRetryState, retryHeaders } from './retry-record.ts';
import type { RetryPolicy } from './retry-policy.ts';
import type { SuppressionEntry, SuppressionList } from './suppression-list.ts';

/** What one attempt leaves behind, to be stored at once: a job is finished only when all of it is durable. */
export interface DurableOutcome {
  events: MessageEvent[];
  suppressions: SuppressionEntry[];
  /** The record again, for the recipients left, due at `notBefore` on rung `rung` of the ladder. */
  retry?: { rung: string; notBefore: number; record: QueueRecord };
}

export interface OutcomeSink<J> {
  /** Resolves once the outcome is durable (Kafka: acknowledged with acks=all; SQLite: committed). */
  commit(job: J, outcome: DurableOutcome): Promise<void>;
  /** Sets aside a job that cannot be processed (unreadable, or a fault of mtrelay): never retried blindly, never lost. */
  deadLetter(job: J, reason: string): Promise<void>;
  /** Where the job is in this queue, for logs (topic, partition and offset; or the row id). */
  locate(job: J): Record<string, unknown>;
}

export interface DeliveryCoreOptions<J> {
  deliverer: Deliverer;
  policy: RetryPolicy;
  suppressions: SuppressionList;
  metrics: DelivererMetrics;
  logger: Logger;
  sink: OutcomeSink<J>;
}

export class DeliveryCore<J extends { record: QueueRecord }> {
  readonly #o: DeliveryCoreOptions<J>;
  #inFlight = 0;

  constructor(options: DeliveryCoreOptions<J>) {
    this.#o = options;
  }

  /** Jobs between `run` and their durable end. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Runs one job to its durable end; rejects only when even setting the job aside failed. */
  async run(job: J): Promise<void> {
    this.#track(+1);
    try {
      await this.#process(job);
    } catch (error) {
      this.#o.logger.error({ err: error, transmissionId: job.record.key, ...this.#o.sink.locate(job) }, 'delivery failed unexpectedly; the record is set aside as a dead letter');
      await this.#deadLetter(job, `delivery attempt failed: ${(error as Error).message}`);
    } finally {
      this.#track(-1);
    }
  }

  #track(delta: number): void {
    this.#inFlight += delta;
    this.#o.metrics.inFlight.set(this.#inFlight);
  }

  async #deadLetter(job: J, reason: string): Promise<void> {
    this.#o.metrics.deadLetters.inc();
    this.#o.logger.error({ transmissionId: job.record.key, ...this.#o.sink.locate(job), reason }, 'record set aside as a dead letter');
    await this.#o.sink.deadLetter(job, reason);
  }

  async #process(job: J): Promise<void> {
    const { record } = job;
    let submission;
    try {
      submission = readSubmission(record.headers);
    } catch (error) {
      if (!hasCode(error, 'MTR_ERR_RECORD')) throw error;
      await this.#deadLetter(job, (error as Error).message);
      return;
    }
    const log = this.#o.logger.child({ transmissionId: submission.transmissionId, namespace: submission.namespace });
    const retry = readRetryState(record.headers);
    const outcomes = await this.#o.deliverer.attempt({ submission, raw: record.value, attempt: retry.attempts, ...(retry.only ? { only: retry.only } : {}) }, log);
    const now = new Date();
    const plan = planOutcomes({ submission, facts: messageFacts(record.value), attemptsBefore: retry.attempts, outcomes, policy: this.#o.policy, now });
    await this.#o.sink.commit(job, {
      events: plan.events,
      suppressions: plan.suppressions,
      ...(plan.retry ? { retry: {
        rung: plan.retry.rung, notBefore: plan.retry.notBefore,
        record: { key: record.key, value: record.value, headers: retryHeaders(record.headers, plan.retry) },
      } } : {}),
    });
    for (const entry of plan.suppressions) this.#o.suppressions.add(entry);
    reportOutcomes(plan, submission, outcomes, now, this.#o.metrics, log);
  }
}
