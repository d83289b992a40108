// Writes that arrive in the same turn of the event loop share one transaction, and so one
// fsync: under load a commit carries many messages, when idle it carries one without waiting.
// Each caller's promise settles with the transaction that carried its item, and only with it:
// work done after the commit can never fail a caller whose item is stored.

export interface GroupCommitOptions<T> {
  /** Stores the items in one transaction; throws when it rolled back. */
  write: (items: T[]) => void;
  /** The error each caller gets when the transaction rolled back. */
  failed?: (error: Error) => Error;
  /** After a commit, once the callers are answered (wake a worker, flush an outbox). Must not throw. */
  committed?: () => void;
}

export class GroupCommit<T> {
  readonly #o: GroupCommitOptions<T>;
  #waiting: { item: T; resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(options: GroupCommitOptions<T>) {
    this.#o = options;
  }

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (this.#waiting.length === 1) setImmediate(() => this.flush());
    });
  }

  /** Writes what is waiting now. */
  flush(): void {
    const batch = this.#waiting;
    this.#waiting = [];
    if (!batch.length) return;
    try {
      this.#o.write(batch.map((w) => w.item));
    } catch (error) {
      const failure = this.#o.failed ? this.#o.failed(error as Error) : (error as Error);
      for (const w of batch) w.reject(failure);
      return;
    }
    for (const w of batch) w.resolve();
    this.#o.committed?.();
  }
}
