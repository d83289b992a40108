// At-least-once with many records in flight per partition: a partition's committable
// offset is the lowest offset still in flight (or one past the highest finished), so a
// commit never passes a record whose outcome is not yet durable.

interface PartitionState {
  inFlight: Set<bigint>;
  highestStarted: bigint;
  highestDone: bigint;
  committed: bigint;
}

export interface CommitOffset {
  topic: string;
  partition: number;
  offset: string;
}

export class OffsetTracker {
  readonly #partitions = new Map<string, PartitionState>();

  #state(topic: string, partition: number): PartitionState {
    const key = `${topic}\u0000${partition}`;
    let state = this.#partitions.get(key);
    if (!state) this.#partitions.set(key, (state = { inFlight: new Set(), highestStarted: -1n, highestDone: -1n, committed: -1n }));
    return state;
  }

  /**
   * True when this process already took the record: after a rebalance kafkajs fetches again
   * from the last commit, and records still in flight (or done) must not be delivered twice.
   */
  isStarted(topic: string, partition: number, offset: string): boolean {
    return BigInt(offset) <= this.#state(topic, partition).highestStarted;
  }

  start(topic: string, partition: number, offset: string): void {
    const state = this.#state(topic, partition);
    const value = BigInt(offset);
    state.inFlight.add(value);
    if (value > state.highestStarted) state.highestStarted = value;
  }

  finish(topic: string, partition: number, offset: string): void {
    const state = this.#state(topic, partition);
    const value = BigInt(offset);
    state.inFlight.delete(value);
    if (value > state.highestDone) state.highestDone = value;
  }

  get inFlight(): number {
    let n = 0;
    for (const state of this.#partitions.values()) n += state.inFlight.size;
    return n;
  }

  /** Offsets that may be committed now and were not committed before. */
  committable(): CommitOffset[] {
    const out: CommitOffset[] = [];
    for (const [key, state] of this.#partitions) {
      if (state.highestDone < 0n) continue;
      let next = state.highestDone + 1n;
      for (const o of state.inFlight) if (o < next) next = o;
      if (next <= state.committed) continue;
      const [topic, partition] = key.split('\u0000');
      out.push({ topic: topic!, partition: Number(partition), offset: next.toString() });
    }
    return out;
  }

  /** Called once the broker accepted a commit, so a failed one is tried again. */
  markCommitted(offsets: CommitOffset[]): void {
    for (const { topic, partition, offset } of offsets) {
      const state = this.#state(topic, partition);
      const value = BigInt(offset);
      if (value > state.committed) state.committed = value;
    }
  }
}
