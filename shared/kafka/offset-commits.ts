// What the deliverer's and the dispatcher's consumers share: offsets committed on a timer, only
// as far as every earlier record is finished (offset-tracker.ts), and a gate that holds the
// fetch loop while too many records are in flight, heartbeating so the group keeps the member.
import type { Consumer } from 'kafkajs';
import type { Logger } from 'pino';
import { OffsetTracker } from './offset-tracker.ts';

export class OffsetCommits {
  readonly tracker = new OffsetTracker();
  readonly #consumer: Consumer;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #committing = false;

  constructor(consumer: Consumer, logger: Logger) {
    this.#consumer = consumer;
    this.#logger = logger;
  }

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.commit(), intervalMs);
  }

  async commit(): Promise<void> {
    if (this.#committing) return;
    const offsets = this.tracker.committable();
    if (!offsets.length) return;
    this.#committing = true;
    try {
      await this.#consumer.commitOffsets(offsets);
      this.tracker.markCommitted(offsets);
    } catch (error) {
      // A rebalance took the partition; its new owner redelivers from the last commit.
      this.#logger.warn({ err: error }, 'offset commit failed');
    } finally {
      this.#committing = false;
    }
  }

  /** The last commit, once nothing more will finish. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    while (this.#committing) await new Promise((r) => setTimeout(r, 10));
    await this.commit();
  }
}

/** Holds the fetch loop while `full()`; woken when a record finishes or the consumer stops. */
export class InFlightGate {
  readonly #wakers: (() => void)[] = [];
  readonly #full: () => boolean;
  #stopping = false;

  constructor(full: () => boolean) {
    this.#full = full;
  }

  async wait(heartbeat: () => Promise<void>): Promise<void> {
    while (this.#full() && !this.#stopping) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 3000);
        this.#wakers.push(() => { clearTimeout(timer); resolve(); });
      });
      await heartbeat().catch(() => undefined);
    }
  }

  wake(): void {
    for (const wake of this.#wakers.splice(0)) wake();
  }

  stop(): void {
    this.#stopping = true;
    this.wake();
  }
}
