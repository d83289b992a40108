// Slows, then refuses, clients that keep failing AUTH. Counted per client address over a
// sliding window; a success does not reset the count (it would let a guesser with one
// valid key keep going).

export interface AuthThrottleOptions {
  /** Failures within the window before replies are slowed. */
  slowAfter: number;
  /** Failures within the window before the address is refused with 421. */
  blockAfter: number;
  windowMs: number;
  /** Extra delay per failure past `slowAfter`, capped at `maxDelayMs`. */
  delayStepMs: number;
  maxDelayMs: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = {
  slowAfter: 3,
  blockAfter: 10,
  windowMs: 10 * 60 * 1000,
  delayStepMs: 1000,
  maxDelayMs: 5000,
};

const MAX_TRACKED_ADDRESSES = 100_000;

export class AuthThrottle {
  readonly #options: AuthThrottleOptions;
  readonly #failures = new Map<string, number[]>();

  constructor(options: Partial<AuthThrottleOptions> = {}) {
    this.#options = { ...DEFAULT_AUTH_THROTTLE, ...options };
  }

  #recent(address: string, now: number): number[] {
    const since = now - this.#options.windowMs;
    const times = (this.#failures.get(address) ?? []).filter((t) => t > since);
    if (times.length) this.#failures.set(address, times);
    else this.#failures.delete(address);
    return times;
  }

  /** Seconds until the address may try again, or 0 when it is not blocked. */
  blockedFor(address: string, now = Date.now()): number {
    const times = this.#recent(address, now);
    if (times.length < this.#options.blockAfter) return 0;
    const unblockAt = times[times.length - this.#options.blockAfter]! + this.#options.windowMs;
    return Math.max(1, Math.ceil((unblockAt - now) / 1000));
  }

  /** Records a failure and returns how long to wait before answering it. */
  fail(address: string, now = Date.now()): number {
    const times = this.#recent(address, now);
    times.push(now);
    if (!this.#failures.has(address) && this.#failures.size >= MAX_TRACKED_ADDRESSES) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
    this.#failures.set(address, times);
    const over = times.length - this.#options.slowAfter;
    return over > 0 ? Math.min(this.#options.maxDelayMs, over * this.#options.delayStepMs) : 0;
  }
}
