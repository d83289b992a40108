// The controller work queue (after client-go's and Strimzi's): a key is held once however
// often it is added, one key is never reconciled by two workers at once (a key added while
// it is being reconciled runs again afterwards), and failures are retried with a per-key
// exponential backoff combined with a global token bucket.
import type { Logger } from 'pino';
import { isConflict } from '../shared/kube/client.ts';
import type { OperatorMetrics } from './metrics.ts';

export type ReconcileResult = { requeueAfterMs?: number } | void;
export type Reconcile = (key: string) => Promise<ReconcileResult>;

export interface WorkQueueOptions {
  kind: string;
  reconcile: Reconcile;
  logger: Logger;
  metrics: OperatorMetrics;
  workers?: number;
  /** Per-key backoff: base * 2^failures, capped (5 ms → 1000 s, as controller-runtime). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Global token bucket for retries. */
  qps?: number;
  burst?: number;
}

export class WorkQueue {
  readonly #options: Required<Omit<WorkQueueOptions, 'reconcile' | 'logger' | 'metrics' | 'kind'>> & WorkQueueOptions;
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  readonly #waiting: (() => void)[] = [];
  #tokens: number;
  #tokensAt = Date.now();
  #stopped = true;
  #workers: Promise<void>[] = [];

  constructor(options: WorkQueueOptions) {
    this.#options = { workers: 2, baseDelayMs: 5, maxDelayMs: 1_000_000, qps: 10, burst: 100, ...options };
    this.#tokens = this.#options.burst;
  }

  get depth(): number {
    return this.#queue.length;
  }

  add(key: string): void {
    if (this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return; // queued again when the running reconcile ends
    this.#queue.push(key);
    this.#updateDepth();
    this.#wakeOne();
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (delayMs <= 0) return this.add(key);
    const due = Date.now() + delayMs;
    const existing = this.#timers.get(key);
    if (existing && existing.due <= due) return;
    clearTimeout(existing?.timer);
    const timer = setTimeout(() => { this.#timers.delete(key); this.add(key); }, delayMs);
    timer.unref();
    this.#timers.set(key, { timer, due });
  }

  /** Exponential per key, and never faster than the global bucket allows. */
  #retryDelay(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const itemDelay = Math.min(this.#options.baseDelayMs * 2 ** failures, this.#options.maxDelayMs);
    const now = Date.now();
    this.#tokens = Math.min(this.#options.burst, this.#tokens + ((now - this.#tokensAt) / 1000) * this.#options.qps);
    this.#tokensAt = now;
    this.#tokens -= 1;
    const bucketDelay = this.#tokens >= 0 ? 0 : (-this.#tokens / this.#options.qps) * 1000;
    return Math.max(itemDelay, bucketDelay);
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#workers = Array.from({ length: this.#options.workers }, () => this.#work());
  }

  /** Stops taking keys and waits for the reconciles in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#wakeAll();
    await Promise.all(this.#workers);
  }

  async #next(): Promise<string | undefined> {
    while (!this.#stopped) {
      const key = this.#queue.shift();
      if (key !== undefined) return key;
      await new Promise<void>((resolve) => { this.#waiting.push(resolve); });
    }
    return undefined;
  }

  #wakeOne(): void {
    this.#waiting.shift()?.();
  }

  #wakeAll(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }

  async #work(): Promise<void> {
    const { kind, logger, metrics, reconcile } = this.#options;
    for (let key = await this.#next(); key !== undefined; key = await this.#next()) {
      this.#updateDepth();
      this.#processing.add(key);
      this.#dirty.delete(key);
      const timer = metrics.reconcileSeconds.startTimer({ kind });
      try {
        const result = await reconcile(key);
        this.#failures.delete(key);
        metrics.reconciles.inc({ kind, result: 'success' });
        if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
      } catch (error) {
        const delay = this.#retryDelay(key);
        if (isConflict(error)) {
          metrics.reconciles.inc({ kind, result: 'conflict' });
          logger.debug({ kind, resource: key, retryInMs: delay }, 'conflict; retrying with fresh data');
        } else {
          metrics.reconciles.inc({ kind, result: 'error' });
          logger.warn({ kind, resource: key, err: error, retryInMs: Math.round(delay) }, 'reconcile failed; retrying');
        }
        this.addAfter(key, delay);
      } finally {
        timer();
        this.#processing.delete(key);
        if (this.#dirty.has(key)) {
          this.#queue.push(key);
          this.#wakeOne();
        }
        this.#updateDepth();
      }
    }
  }

  #updateDepth(): void {
    this.#options.metrics.queueDepth.set({ kind: this.#options.kind }, this.#queue.length);
  }
}
