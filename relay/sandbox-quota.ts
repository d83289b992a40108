// The sandbox domain lets every account try sending before it owns a domain, within a small
// quota: a rolling 24 hours per namespace. Counted per relay process; a fleet-wide count
// would need a shared counter (a compacted Kafka topic keyed by namespace).

const DAY_MS = 24 * 60 * 60 * 1000;

export class SandboxQuota {
  readonly limit: number;
  readonly #sent = new Map<string, number[]>();

  constructor(limit: number) {
    this.limit = limit;
  }

  #recent(namespace: string, now: number): number[] {
    const times = (this.#sent.get(namespace) ?? []).filter((t) => t > now - DAY_MS);
    this.#sent.set(namespace, times);
    return times;
  }

  /** True while the namespace may send another sandbox message. */
  allows(namespace: string, now = Date.now()): boolean {
    return this.#recent(namespace, now).length < this.limit;
  }

  /** Counts an accepted sandbox message. */
  record(namespace: string, now = Date.now()): void {
    this.#recent(namespace, now).push(now);
  }
}
