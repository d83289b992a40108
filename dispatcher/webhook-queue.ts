// One webhook's events, in order: batched by count, size and time, posted one batch at a time;
// a failed batch is posted again with growing gaps until it succeeds or has been failing for
// the give-up time, when it is dropped (and said so). Each webhook has its own queue, so one
// that fails delays nobody else. An event is done for this webhook once its batch is
// delivered or dropped; the dispatcher commits its position only when every webhook is done.
import { randomUUID } from 'node:crypto';
import type { CompiledWebhook } from '../shared/config/types.ts';
import type { SparkPostEvent } from './sparkpost-shape.ts';
import type { SendResult } from './webhook-sender.ts';

export interface QueueItem {
  event: SparkPostEvent;
  /** Its JSON's length, for the batch size bound. */
  bytes: number;
  done: () => void;
}

export interface DispatchPolicy {
  maxBatchEvents: number;
  maxBatchBytes: number;
  /** How long the first event of a batch waits for others. */
  lingerMs: number;
  firstRetryMs: number;
  maxRetryMs: number;
  /** A batch failing this long is dropped. */
  giveUpAfterMs: number;
  /** Events held for a webhook at most; beyond, the oldest are dropped. */
  maxBacklog: number;
}

/** What a queue tells the rest: for metrics, logs and the Webhook's status. */
export interface QueueReports {
  delivered(events: number, at: Date): void;
  failed(reason: string, at: Date, attempt: number): void;
  dropped(events: number, reason: string, at: Date): void;
}

export type Send = (webhook: CompiledWebhook, batchId: string, events: SparkPostEvent[]) => Promise<SendResult>;

interface Batch {
  id: string;
  items: QueueItem[];
  firstAttemptAt: number;
  attempts: number;
}

export class WebhookQueue {
  readonly #webhook: () => CompiledWebhook | undefined;
  readonly #send: Send;
  readonly #policy: DispatchPolicy;
  readonly #reports: QueueReports;
  #pending: QueueItem[] = [];
  #batch: Batch | undefined;
  #pendingBytes = 0;
  #attempt: Promise<void> | undefined;
  /** A batch still filling waits this timer; a failed batch waits #retry. */
  #linger: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(webhook: () => CompiledWebhook | undefined, send: Send, policy: DispatchPolicy, reports: QueueReports) {
    this.#webhook = webhook;
    this.#send = send;
    this.#policy = policy;
    this.#reports = reports;
  }

  /** Events waiting, the batch being posted included. */
  get backlog(): number {
    return this.#pending.length + (this.#batch?.items.length ?? 0);
  }

  push(item: QueueItem): void {
    if (this.#closed) {
      item.done();
      return;
    }
    this.#pending.push(item);
    this.#pendingBytes += item.bytes + 1;
    const over = this.backlog - this.#policy.maxBacklog;
    if (over > 0) {
      // A receiver down for hours must not hold the dispatcher's memory: the oldest waiting events go.
      const dropped = this.#pending.splice(0, Math.min(over, this.#pending.length));
      for (const d of dropped) {
        this.#pendingBytes -= d.bytes + 1;
        d.done();
      }
      this.#reports.dropped(dropped.length, `backlog over ${this.#policy.maxBacklog} events`, new Date());
    }
    this.#pump();
  }

  /** The webhook is gone: its waiting events are done with; a post in progress ends on its own. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#linger);
    clearTimeout(this.#retry);
    for (const item of this.#pending.splice(0)) item.done();
    this.#pendingBytes = 0;
    if (this.#batch && !this.#attempt) this.#finish(this.#batch);
  }

  /** The dispatcher stops: nothing more is posted, and what waits is left to the next one (not done). */
  stop(): void {
    this.#closed = true;
    clearTimeout(this.#linger);
    clearTimeout(this.#retry);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#batch = undefined;
  }

  /** Resolves when no post is in progress (for a drain; a batch waiting to be tried again is not waited for). */
  async idle(): Promise<void> {
    while (this.#attempt) await this.#attempt;
  }

  #pump(): void {
    if (this.#closed || this.#attempt || this.#retry) return;
    if (!this.#batch) {
      if (!this.#pending.length) return;
      const full = this.#pending.length >= this.#policy.maxBatchEvents || this.#pendingBytes >= this.#policy.maxBatchBytes;
      if (!full) {
        this.#linger ??= setTimeout(() => {
          this.#linger = undefined;
          this.#batch ??= this.#take();
          this.#pump();
        }, this.#policy.lingerMs);
        return;
      }
      // Full before its time: it goes now.
      clearTimeout(this.#linger);
      this.#linger = undefined;
      this.#batch = this.#take();
    }
    if (!this.#batch) return;
    this.#attempt = this.#post(this.#batch).finally(() => {
      this.#attempt = undefined;
      this.#pump();
    });
  }

  #take(): Batch | undefined {
    let bytes = 2;
    let count = 0;
    for (const item of this.#pending) {
      if (count >= this.#policy.maxBatchEvents || (count > 0 && bytes + item.bytes + 1 > this.#policy.maxBatchBytes)) break;
      bytes += item.bytes + 1;
      count++;
    }
    if (!count) return undefined;
    this.#pendingBytes -= bytes - 2;
    return { id: randomUUID(), items: this.#pending.splice(0, count), firstAttemptAt: 0, attempts: 0 };
  }

  #finish(batch: Batch): void {
    for (const item of batch.items) item.done();
    this.#batch = undefined;
  }

  async #post(batch: Batch): Promise<void> {
    const webhook = this.#webhook();
    if (!webhook) {
      this.close();
      return;
    }
    batch.attempts++;
    batch.firstAttemptAt ||= Date.now();
    const result = await this.#send(webhook, batch.id, batch.items.map((i) => i.event));
    const now = new Date();
    if (this.#closed) {
      // The webhook went while this post was on its way: its events are done with either way.
      // (After stop() there is no batch to finish: what it held is the next dispatcher's.)
      if (this.#batch === batch) this.#finish(batch);
      return;
    }
    if (result.ok) {
      this.#reports.delivered(batch.items.length, now);
      this.#finish(batch);
      return;
    }
    this.#reports.failed(result.reason, now, batch.attempts);
    const failingFor = now.getTime() - batch.firstAttemptAt;
    if (failingFor >= this.#policy.giveUpAfterMs) {
      this.#reports.dropped(batch.items.length, `failing for ${Math.round(failingFor / 1000)} s: ${result.reason}`, now);
      this.#finish(batch);
      return;
    }
    // Growing gaps with some jitter, so receivers coming back are not hit by every dispatcher at once.
    const gap = Math.min(this.#policy.maxRetryMs, this.#policy.firstRetryMs * 2 ** (batch.attempts - 1)) * (0.8 + Math.random() * 0.4);
    const wait = Math.max(0, Math.min(gap, batch.firstAttemptAt + this.#policy.giveUpAfterMs - now.getTime()));
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#pump();
    }, wait);
  }
}
