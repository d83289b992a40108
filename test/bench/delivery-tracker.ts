// Matches each message the server under test answered 250 with its arrival at the sink, by
// Message-ID (unique per message, see message.ts, and left alone by every relay on the way).
// Both times come from performance.now() in this process, so their difference is the
// accept → deliver latency.
import { performance } from 'node:perf_hooks';
import { messageIdOf } from './counting-sink.ts';
import { summarize, type LatencySummary } from './latency-stats.ts';

export interface DeliveryResult {
  accepted: number;
  /** Accepted messages that reached the sink (each counted once). */
  delivered: number;
  /** Arrivals beyond the first of a message (at-least-once delivery may repeat one). */
  duplicates: number;
  /** Arrivals of messages this phase did not see accepted (a late one from an earlier phase). */
  strays: number;
  /** performance.now() of the first 250 and of the last arrival of an accepted message. */
  firstAcceptedAt: number;
  lastArrivedAt: number;
  /** Delivered messages per second from the first 250 to the last arrival. */
  rate: number;
  /** Accept → arrival, milliseconds. */
  latency: LatencySummary;
}

export class DeliveryTracker {
  readonly #acceptedAt = new Map<string, number>();
  readonly #arrivedAt = new Map<string, number>();
  #duplicates = 0;
  /** Messages both accepted and arrived, kept as a count so waiting costs nothing per check. */
  #matched = 0;

  /** For LoadOptions.onAccepted. */
  readonly accepted = (message: Buffer, repliedAt: number): void => {
    const id = messageIdOf(message);
    if (this.#acceptedAt.has(id)) return;
    this.#acceptedAt.set(id, repliedAt);
    if (this.#arrivedAt.has(id)) this.#matched += 1;
  };

  /** For CountingSink.onMessage. An arrival may be seen before its 250 is read: both are kept. */
  readonly arrived = (id: string, arrivedAt: number): void => {
    if (this.#arrivedAt.has(id)) {
      this.#duplicates += 1;
      return;
    }
    this.#arrivedAt.set(id, arrivedAt);
    if (this.#acceptedAt.has(id)) this.#matched += 1;
  };

  /** Accepted messages not yet at the sink. */
  get missing(): number {
    return this.#acceptedAt.size - this.#matched;
  }

  /** Waits until every accepted message has arrived, or `timeoutMs` passed; true when all did. */
  async allDelivered(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.missing > 0) {
      if (performance.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return true;
  }

  result(): DeliveryResult {
    const latencies: number[] = [];
    let firstAcceptedAt = Infinity;
    let lastArrivedAt = -Infinity;
    for (const [id, acceptedAt] of this.#acceptedAt) {
      firstAcceptedAt = Math.min(firstAcceptedAt, acceptedAt);
      const arrivedAt = this.#arrivedAt.get(id);
      if (arrivedAt === undefined) continue;
      latencies.push(arrivedAt - acceptedAt);
      lastArrivedAt = Math.max(lastArrivedAt, arrivedAt);
    }
    const delivered = latencies.length;
    return {
      accepted: this.#acceptedAt.size, delivered, duplicates: this.#duplicates, strays: this.#arrivedAt.size - delivered,
      firstAcceptedAt, lastArrivedAt, rate: delivered > 0 ? delivered / ((lastArrivedAt - firstAcceptedAt) / 1000) : 0,
      latency: summarize(latencies),
    };
  }
}
