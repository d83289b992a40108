// Runs deliveries from the embedded queue with the same engine and the same outcome plan
// as the Kafka runtime: many jobs in flight, each finished in one transaction.
import type { Logger } from 'pino';
import type { Deliverer } from '../deliverer/delivery.ts';
import { messageFacts } from '../deliverer/message-facts.ts';
import type { DelivererMetrics } from '../deliverer/metrics.ts';
import { planOutcomes } from '../deliverer/outcomes.ts';
import { reportOutcomes } from '../deliverer/report-outcomes.ts';
import { readRetryState, retryHeaders } from '../deliverer/retry-record.ts';
import type { RetryPolicy } from '../deliverer/retry-policy.ts';
import type { SuppressionList } from '../deliverer/suppression-list.ts';
import { readSubmission } from '../shared/kafka/submission-record.ts';
import type { QueuedJob, SqliteQueue } from './sqlite-queue.ts';

export interface LocalRuntimeOptions {
  queue: SqliteQueue;
  deliverer: Deliverer;
  policy: RetryPolicy;
  suppressions: SuppressionList;
  metrics: DelivererMetrics;
  logger: Logger;
  maxInFlight: number;
}

export class LocalDeliveryRuntime {
  readonly #o: LocalRuntimeOptions;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;
  #pumpScheduled = false;
  #idle: (() => void) | undefined;

  constructor(options: LocalRuntimeOptions) {
    this.#o = options;
    for (const entry of options.queue.suppressions()) options.suppressions.add(entry);
    options.queue.onWork = () => this.#schedulePump();
  }

  start(): void {
    this.#pump();
  }

  /** Jobs that finish together free their slots together: one claim (one write) for all of them. */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** Claims what is due, up to the in-flight limit, and sleeps until the next due job. */
  #pump(): void {
    if (this.#stopping) return;
    clearTimeout(this.#timer);
    const jobs = this.#o.queue.claim(this.#o.maxInFlight - this.#inFlight);
    for (const job of jobs) {
      this.#inFlight++;
      this.#o.metrics.inFlight.set(this.#inFlight);
      void this.#process(job).catch((error: Error) => {
        this.#o.logger.error({ err: { message: error.message, stack: error.stack }, job: job.id }, 'delivery failed unexpectedly; the job is set aside in dead_letters');
        this.#o.metrics.deadLetters.inc();
        this.#o.queue.deadLetter(job, error.message);
      }).finally(() => {
        this.#inFlight--;
        this.#o.metrics.inFlight.set(this.#inFlight);
        if (this.#stopping && this.#inFlight === 0) this.#idle?.();
        else this.#schedulePump();
      });
    }
    const due = this.#o.queue.nextDue();
    const wait = due === undefined ? 1000 : Math.max(10, Math.min(1000, due - Date.now()));
    this.#timer = setTimeout(() => this.#pump(), wait);
  }

  async #process(job: QueuedJob): Promise<void> {
    const submission = readSubmission(job.headers);
    const retry = readRetryState(job.headers);
    const outcomes = await this.#o.deliverer.attempt({ submission, raw: job.value, attempt: retry.attempts, ...(retry.only ? { only: retry.only } : {}) });
    const now = new Date();
    const plan = planOutcomes({ submission, facts: messageFacts(job.value), attemptsBefore: retry.attempts, outcomes, policy: this.#o.policy, now });
    await this.#o.queue.complete(job, {
      events: plan.events,
      suppressions: plan.suppressions,
      ...(plan.retry ? { retry: { headers: retryHeaders(job.headers, plan.retry) as Record<string, string>, notBefore: plan.retry.notBefore } } : {}),
    });
    for (const s of plan.suppressions) this.#o.suppressions.add(s);
    reportOutcomes(plan, submission, outcomes, now, this.#o.metrics, this.#o.logger);
  }

  /** Stops claiming and waits for jobs in flight (leased jobs of a killed process come back at start). */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
  }
}
