// Publishes a process's own usage counts and prunes old buckets on a steady beat, whatever
// holds them (the usage topic in a cluster, SQLite in standalone). A store that fails keeps
// the changes for the next beat: counts are absolute, so a late write is never counted twice.
import type { Logger } from 'pino';
import type { UsageCounters, UsageRecord } from './usage-counters.ts';

/** How often a process publishes its counts: with the reading side's lag, the bound on what another process misses. */
export const USAGE_PUBLISH_INTERVAL_MS = 1000;

export interface UsageSyncOptions {
  counters: UsageCounters;
  logger: Logger;
  /** Stores the records; rejects when they were not stored. */
  publish(records: UsageRecord[]): Promise<void> | void;
  intervalMs?: number;
  onPublished?(records: number): void;
  onFailed?(): void;
}

export class UsageSync {
  readonly #o: UsageSyncOptions;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #failing = false;

  constructor(options: UsageSyncOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.#o.intervalMs ?? USAGE_PUBLISH_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Publishes what changed (one publication at a time: a later one never overtakes an earlier one). */
  flush(): Promise<void> {
    this.#inFlight ??= this.#publish().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  async #publish(): Promise<void> {
    const { counters, logger } = this.#o;
    counters.prune();
    const records = counters.takeChanges();
    if (records.length === 0) return;
    try {
      await this.#o.publish(records);
      this.#o.onPublished?.(records.length);
      if (this.#failing) logger.info('usage counts published again');
      this.#failing = false;
    } catch (error) {
      counters.putBack(records);
      this.#o.onFailed?.();
      // Once per outage: the beat would repeat it every second.
      if (!this.#failing) logger.warn({ err: error }, 'usage counts not published; other relays may let a key past its limit until they are');
      this.#failing = true;
    }
  }

  /** Stops the beat after publishing what is left. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#inFlight;
    await this.flush();
  }
}
