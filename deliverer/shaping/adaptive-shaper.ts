// Backs off a provider that says it is under pressure, for every deliverer, and comes back
// gradually. A throttling reply (`421 4.7.28`, `451 4.7.650`, `4.7.0 … rate`, …) is counted in
// the fleet's shared usage counters (shared/usage: the `usage` topic in a cluster, SQLite in
// standalone). Each process derives the provider's rate factor from that shared history with
// the same steps, so all of them back off together:
//
// - the process that gets the reply cuts the factor to CUT of itself at once (at most once per
//   STEP; to REPEATED_CUT when the step before was cut too: far above the limit, it comes down fast);
// - every STEP, once SETTLE has passed for the fleet's counts to arrive, each process looks at
//   that step's throttling replies of the whole fleet: any, and the factor is cut (unless it
//   already was in that step), down to MIN_FACTOR;
// - after QUIET without any, it grows by RECOVERY (a factor) per step, back up to 1: slowly
//   near the limit it found, which it probes again only gently.
//
// The factor scales the provider's rate and connections. A process started later replays the
// history it reads and lands on the same factor. Error bound: the others follow a throttling
// reply within STEP + SETTLE (5 s) and until then send at their old rate; a count that reaches a
// process later than SETTLE (publishing every second, plus the topic's lag) is not acted on.
import type { Gauge, Counter } from 'prom-client';
import type { UsageCounters } from '../../shared/usage/usage-counters.ts';
import type { LaneLimits } from '../smtp-pool.ts';
import { ruleForHost, type ProviderRule } from './provider-rules.ts';

export const STEP_MS = 2_000;
/** How long a step's counts are given to arrive from the rest of the fleet before it is evaluated. */
export const SETTLE_MS = 3_000;
export const QUIET_MS = 6_000;
export const MIN_FACTOR = 1 / 32;
export const CUT = 0.75;
export const REPEATED_CUT = 0.5;
export const RECOVERY = 1.05;
/** How far back a process replays the fleet's throttling history: enough to recover from the floor, and more. */
const HISTORY_MS = QUIET_MS + Math.ceil(Math.log(1 / MIN_FACTOR) / Math.log(RECOVERY)) * STEP_MS + 10 * 60_000;
/** One-second buckets: each step counts exactly its own seconds (stepCount). */
const WINDOW = { window: HISTORY_MS, bucket: 1000 };

/** The replies providers throttle with: Gmail 421 4.7.28, Microsoft 451 4.7.650, Yahoo's TSS04, and 4.7.0 with "rate" and the like. */
const THROTTLING = [/^4\d\d[ -]4\.7\.(28|650)\b/, /^4\d\d[ -]4\.7\.0\b.*\b(rate|throttl\w*|TSS04|too many)\b/i, /^421[ -].*\[TS(S)?0[1-4]\]/];

export function isThrottling(reply: string): boolean {
  return THROTTLING.some((pattern) => pattern.test(reply));
}

const counterName = (provider: string) => `shaping|throttled|${provider}`;

interface State {
  factor: number;
  /** The last step evaluated. */
  stepped: number;
  /** When the factor was last cut. */
  cut: number;
}

export class AdaptiveShaper {
  readonly #rules: ProviderRule[];
  readonly #counters: UsageCounters;
  readonly #states = new Map<string, State>();
  readonly #metrics: { factor: Gauge<'provider'> | undefined; throttled: Counter<'provider'> | undefined };
  #timer?: NodeJS.Timeout;

  constructor(options: { rules: ProviderRule[]; counters: UsageCounters; factorGauge?: Gauge<'provider'>; throttledCounter?: Counter<'provider'> }) {
    this.#rules = options.rules;
    this.#counters = options.counters;
    this.#metrics = { factor: options.factorGauge, throttled: options.throttledCounter };
  }

  /** Keeps every provider's factor (and its gauge) current, with or without traffic. */
  start(): void {
    const tick = () => { for (const rule of this.#rules) this.factor(rule.name); };
    tick();
    this.#timer = setInterval(tick, STEP_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** The provider of an MX host and its limits now, or undefined for a host of no known provider. */
  laneFor(host: string): LaneLimits | undefined {
    const rule = ruleForHost(this.#rules, host);
    if (!rule) return undefined;
    const factor = this.factor(rule.name);
    return {
      lane: rule.name,
      connections: Math.max(1, Math.round(rule.connections * factor)),
      messagesPerConnection: rule.messagesPerConnection,
      messagesPerSecond: rule.messagesPerSecond * factor,
    };
  }

  /** Counts a reply from an MX host; a throttling one backs its provider off here at once, and everywhere at the next step. */
  observe(host: string, reply: string, now = Date.now()): void {
    if (!isThrottling(reply)) return;
    const rule = ruleForHost(this.#rules, host);
    if (!rule) return;
    this.#counters.add(counterName(rule.name), 1, WINDOW, now);
    this.#metrics.throttled?.inc({ provider: rule.name });
    const state = this.#state(rule.name, now);
    this.#advance(rule.name, state, now);
    if (now - state.cut >= STEP_MS) this.#cut(rule.name, state, now);
  }

  /** The provider's factor (1: its full limits), after the steps due. */
  factor(provider: string, now = Date.now()): number {
    const state = this.#state(provider, now);
    this.#advance(provider, state, now);
    this.#metrics.factor?.set({ provider }, state.factor);
    return state.factor;
  }

  #state(provider: string, now: number): State {
    let state = this.#states.get(provider);
    // A new process replays the history it has read, to land where the others are.
    // Steps fall on the same instants in every process (multiples of STEP_MS), so all count alike.
    if (!state) this.#states.set(provider, (state = { factor: 1, stepped: Math.floor((now - HISTORY_MS) / STEP_MS) * STEP_MS, cut: -Infinity }));
    return state;
  }

  #advance(provider: string, state: State, now: number): void {
    const name = counterName(provider);
    // The buckets of [end - span, end): those that start in it (a bucket's count window reaches one bucket back).
    const replies = (end: number, span: number) => this.#counters.count(name, span - 1000, end - 1);
    while (now - state.stepped >= STEP_MS + SETTLE_MS) {
      state.stepped += STEP_MS;
      if (replies(state.stepped, STEP_MS) > 0) {
        // Not twice for one step: a cut since the step began (this process's own) answered it.
        if (state.cut < state.stepped - STEP_MS) this.#cut(provider, state, state.stepped - STEP_MS);
      } else if (state.stepped - state.cut >= QUIET_MS && replies(state.stepped, QUIET_MS) === 0) {
        state.factor = Math.min(1, state.factor * RECOVERY);
      }
    }
  }

  #cut(provider: string, state: State, at: number): void {
    state.factor = Math.max(MIN_FACTOR, state.factor * (at - state.cut <= 2 * STEP_MS ? REPEATED_CUT : CUT));
    state.cut = at;
    this.#metrics.factor?.set({ provider }, state.factor);
  }
}
