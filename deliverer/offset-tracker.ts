// At-least-once with many records in flight per partition: a partition's committable
// offset is the lowest offset still in flight (or one past the highest finished), so a
// commit never passes a record whose outcome is not yet durable.

export class OffsetTracker {
  readonly #inFlight = new Map<string, Set<bigint>>();
  readonly #highestDone = new Map<string, bigint>();
  readonly #committed = new Map<string, bigint>();

  static key(topic: string, partition: number): string {
    return `${topic}\u0000${partition}`;
  }

  start(topic: string, partition: number, offset: string): void {
    const key = OffsetTracker.key(topic, partition);
    let set = this.#inFlight.get(key);
    if (!set) this.#inFlight.set(key, (set = new Set()));
    set.add(BigInt(offset));
  }

  finish(topic: string, partition: number, offset: string): void {
    const key = OffsetTracker.key(topic, partition);
    const value = BigInt(offset);
    this.#inFlight.get(key)?.delete(value);
    if ((this.#highestDone.get(key) ?? -1n) < value) this.#highestDone.set(key, value);
  }

  get inFlight(): number {
    let n = 0;
    for (const set of this.#inFlight.values()) n += set.size;
    return n;
  }

  /** Offsets that may be committed now and were not committed before. */
  committable(): { topic: string; partition: number; offset: string }[] {
    const out: { topic: string; partition: number; offset: string }[] = [];
    for (const [key, done] of this.#highestDone) {
      const flying = this.#inFlight.get(key);
      let next = done + 1n;
      if (flying?.size) for (const o of flying) if (o < next) next = o;
      if (next <= (this.#committed.get(key) ?? -1n)) continue;
      this.#committed.set(key, next);
      const [topic, partition] = key.split('\u0000');
      out.push({ topic: topic!, partition: Number(partition), offset: next.toString() });
    }
    return out;
  }

  /** A partition was taken away: forget it (its uncommitted records will be redelivered elsewhere). */
  forget(topic: string, partition: number): void {
    const key = OffsetTracker.key(topic, partition);
    this.#inFlight.delete(key);
    this.#highestDone.delete(key);
    this.#committed.delete(key);
  }
}
