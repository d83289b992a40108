// Slows, then refuses, clients that keep failing AUTH. Counted per client address over a
// sliding window, across every relay of the fleet (shared/usage), so spreading guesses over
// replicas or waiting for a restart gains nothing. A success does not reset the count (it
// would let a guesser with one valid key keep going).
import type { CounterWindow, UsageCounters } from '../shared/usage/usage-counters.ts';

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

export const authFailureCounter = (address: string) => `auth-fail:${address}`;

export class AuthThrottle {
  readonly #options: AuthThrottleOptions;
  readonly #counters: UsageCounters;
  /** Sixty buckets per window (ten seconds for the default ten minutes). */
  readonly #window: CounterWindow;

  constructor(options: Partial<AuthThrottleOptions>, counters: UsageCounters) {
    this.#options = { ...DEFAULT_AUTH_THROTTLE, ...options };
    this.#counters = counters;
    this.#window = { window: this.#options.windowMs, bucket: Math.max(1000, Math.floor(this.#options.windowMs / 60)) };
  }

  /** Seconds until the address may try again, or 0 when it is not blocked. */
  blockedFor(address: string, now = Date.now()): number {
    const waitMs = this.#counters.retryAfterMs(authFailureCounter(address), this.#window.window, this.#options.blockAfter, now);
    return waitMs ? Math.max(1, Math.ceil(waitMs / 1000)) : 0;
  }

  /** Records a failure and returns how long to wait before answering it. */
  fail(address: string, now = Date.now()): number {
    const counter = authFailureCounter(address);
    this.#counters.add(counter, 1, this.#window, now);
    const over = this.#counters.count(counter, this.#window.window, now) - this.#options.slowAfter;
    return over > 0 ? Math.min(this.#options.maxDelayMs, over * this.#options.delayStepMs) : 0;
  }
}
