// Counts over sliding windows that every relay of a fleet shares: messages per API key per
// hour and day, sandbox messages per account, failed AUTHs per client address. Each process
// counts its own events in time buckets and publishes them (usage-channel.ts); it adds what
// the others published. A count is the sum of all sources' buckets still in the window, so
// a process that restarts under a new source id still sees what it counted before.
//
// A bucket [start, start + width) counts while any of it is inside the window: an event
// counts for at least the window and at most one bucket longer, never less.
import { randomUUID } from 'node:crypto';

/** One source's count in one bucket of one counter: what is published and applied. */
export interface UsageRecord {
  counter: string;
  source: string;
  start: number;
  width: number;
  /** The counter's window: how long the bucket matters. */
  window: number;
  count: number;
}

/** What a count is over: `window` milliseconds, in buckets of `bucket` milliseconds. */
export interface CounterWindow {
  window: number;
  bucket: number;
}

/** A limit to check: a counter, its window, and the most it may reach. */
export interface LimitCheck extends CounterWindow {
  counter: string;
  limit: number;
}

interface Bucket {
  start: number;
  width: number;
  count: number;
}

interface Counter {
  window: number;
  own: Map<number, Bucket>;
  others: Map<string, Map<number, Bucket>>;
  /** Taken by checks whose events are not yet stored (a message on its way to the queue). */
  pending: number;
}

export interface Reservation {
  /** The events happened (the message was stored): they count from now on, and are published. */
  commit(now?: number): void;
  /** They did not: the room goes back. */
  release(): void;
}

export type TakeResult = { ok: true; reservation: Reservation } | { ok: false; refused: LimitCheck; count: number; retryAfterMs: number };

export interface UsageCountersOptions {
  /** This process's name among the sources (a fresh one by default). */
  source?: string;
  /**
   * Counters of one kind (the part of a name before its first `:`) kept at most; past it the
   * least recently changed of that kind go. Bounds memory under many client addresses, and a
   * flood of one kind (failed AUTHs) never pushes out another (a key's sending limit).
   */
  maxCountersPerKind?: number;
}

const ends = (b: Bucket) => b.start + b.width;
/** The part of a counter's name before its first `:` (`key-hour`, `auth-fail`, …). */
const kindOf = (name: string) => name.slice(0, Math.max(0, name.indexOf(':')));

export class UsageCounters {
  readonly source: string;
  readonly #maxPerKind: number;
  /** By kind, then name; within a kind the least recently changed first. */
  readonly #kinds = new Map<string, Map<string, Counter>>();
  /** Own buckets changed since the last takeChanges, by counter then bucket start. */
  #dirty = new Map<string, Set<number>>();

  constructor(options: UsageCountersOptions = {}) {
    this.source = options.source ?? randomUUID();
    this.#maxPerKind = options.maxCountersPerKind ?? 100_000;
  }

  /** Counters held, of every kind. */
  get size(): number {
    return [...this.#kinds.values()].reduce((n, kind) => n + kind.size, 0);
  }

  #kind(name: string): Map<string, Counter> {
    const kindName = kindOf(name);
    let kind = this.#kinds.get(kindName);
    if (!kind) this.#kinds.set(kindName, (kind = new Map()));
    return kind;
  }

  /** A counter if it exists; reading never creates one. */
  #get(name: string): Counter | undefined {
    return this.#kinds.get(kindOf(name))?.get(name);
  }

  #counter(name: string, window: number): Counter {
    const kind = this.#kind(name);
    let counter = kind.get(name);
    if (counter) {
      // Most recently changed last: the first of the kind is the one to evict.
      kind.delete(name);
    } else {
      counter = { window, own: new Map(), others: new Map(), pending: 0 };
      if (kind.size >= this.#maxPerKind) this.#evictOldest(kind);
    }
    counter.window = Math.max(counter.window, window);
    kind.set(name, counter);
    return counter;
  }

  #evictOldest(kind: Map<string, Counter>): void {
    for (const [name, counter] of kind) {
      if (counter.pending > 0) continue; // a reservation still holds it
      kind.delete(name);
      this.#dirty.delete(name);
      return;
    }
  }

  #inWindow(counter: Counter | undefined, window: number, now: number): Bucket[] {
    if (!counter) return [];
    const since = now - window;
    const all = [...counter.own.values(), ...[...counter.others.values()].flatMap((m) => [...m.values()])];
    return all.filter((b) => ends(b) > since && b.start <= now);
  }

  /** Events in the window, of every source, with those reserved here but not yet committed. */
  count(name: string, window: number, now = Date.now()): number {
    const counter = this.#get(name);
    return this.#inWindow(counter, window, now).reduce((n, b) => n + b.count, counter?.pending ?? 0);
  }

  /** How long until the count falls under `limit` if nothing new happens (0: it is under already). */
  retryAfterMs(name: string, window: number, limit: number, now = Date.now()): number {
    const counter = this.#get(name);
    const buckets = this.#inWindow(counter, window, now).sort((a, b) => ends(a) - ends(b));
    let count = buckets.reduce((n, b) => n + b.count, counter?.pending ?? 0);
    if (count < limit) return 0;
    for (const bucket of buckets) {
      count -= bucket.count;
      if (count < limit) return Math.max(1, ends(bucket) + window - now);
    }
    return window; // what is pending alone fills the limit: it counts from its commit on
  }

  /** Counts `n` events of this process now (they are published with the next changes). */
  add(name: string, n: number, { window, bucket }: CounterWindow, now = Date.now()): void {
    const counter = this.#counter(name, window);
    const start = now - (now % bucket);
    const existing = counter.own.get(start);
    if (existing) existing.count += n;
    else counter.own.set(start, { start, width: bucket, count: n });
    let dirty = this.#dirty.get(name);
    if (!dirty) this.#dirty.set(name, (dirty = new Set()));
    dirty.add(start);
  }

  /**
   * Takes room for `n` events under every check at once, or none: the first check that `n`
   * more would pass is returned with when to try again.
   */
  take(checks: LimitCheck[], n: number, now = Date.now()): TakeResult {
    for (const check of checks) {
      const count = this.count(check.counter, check.window, now);
      if (count + n > check.limit) {
        // Room for n comes when the count falls to limit - n: retryAfterMs of a limit n - 1 lower.
        return { ok: false, refused: check, count, retryAfterMs: this.retryAfterMs(check.counter, check.window, check.limit - n + 1, now) };
      }
    }
    const held = checks.map((check) => {
      const counter = this.#counter(check.counter, check.window);
      counter.pending += n;
      return { check, counter };
    });
    let settled = false;
    const settle = (commit: boolean, at = Date.now()) => {
      if (settled) return;
      settled = true;
      for (const { check, counter } of held) {
        counter.pending -= n;
        if (commit) this.add(check.counter, n, check, at);
      }
    };
    return { ok: true, reservation: { commit: (at) => settle(true, at), release: () => settle(false) } };
  }

  /** Another source's bucket (its latest count replaces the one before); this process's own are ignored. */
  apply(record: UsageRecord, now = Date.now()): void {
    if (record.source === this.source) return;
    if (record.start + record.width + record.window <= now) return; // out of every window already
    const counter = this.#counter(record.counter, record.window);
    let source = counter.others.get(record.source);
    if (!source) counter.others.set(record.source, (source = new Map()));
    source.set(record.start, { start: record.start, width: record.width, count: record.count });
  }

  /** Own buckets changed since the last call, with their current counts. */
  takeChanges(): UsageRecord[] {
    const records: UsageRecord[] = [];
    for (const [name, starts] of this.#dirty) {
      const counter = this.#get(name);
      if (!counter) continue;
      for (const start of starts) {
        const bucket = counter.own.get(start);
        if (bucket) records.push({ counter: name, source: this.source, start, width: bucket.width, window: counter.window, count: bucket.count });
      }
    }
    this.#dirty = new Map();
    return records;
  }

  /** Changes that could not be published are published with the next ones. */
  putBack(records: UsageRecord[]): void {
    for (const record of records) {
      if (!this.#get(record.counter)) continue;
      let dirty = this.#dirty.get(record.counter);
      if (!dirty) this.#dirty.set(record.counter, (dirty = new Set()));
      dirty.add(record.start);
    }
  }

  /** Forgets buckets out of their counter's window, and counters left empty. */
  prune(now = Date.now()): void {
    for (const kind of this.#kinds.values()) this.#pruneKind(kind, now);
  }

  #pruneKind(kind: Map<string, Counter>, now: number): void {
    for (const [name, counter] of kind) {
      const since = now - counter.window;
      const keep = (buckets: Map<number, Bucket>) => {
        for (const [start, bucket] of buckets) if (ends(bucket) <= since) buckets.delete(start);
      };
      keep(counter.own);
      for (const [source, buckets] of counter.others) {
        keep(buckets);
        if (buckets.size === 0) counter.others.delete(source);
      }
      if (counter.own.size === 0 && counter.others.size === 0 && counter.pending === 0) {
        kind.delete(name);
        this.#dirty.delete(name);
      }
    }
  }
}
