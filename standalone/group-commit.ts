// Writes that arrive in the same turn of the event loop share one transaction, and so one
// fsync: under load a commit carries many messages, when idle it carries one without waiting.
// Each caller's promise settles with the transaction that carried its item.

export class GroupCommit<T> {
  readonly #write: (items: T[]) => void;
  readonly #failed: (error: Error) => Error;
  #waiting: { item: T; resolve: () => void; reject: (error: Error) => void }[] = [];

  /**
   * `write` stores the items in one transaction and throws when it rolled back; `failed` turns
   * that error into the one each caller gets.
   */
  constructor(write: (items: T[]) => void, failed: (error: Error) => Error = (error) => error) {
    this.#write = write;
    this.#failed = failed;
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
      this.#write(batch.map((w) => w.item));
    } catch (error) {
      const failure = this.#failed(error as Error);
      for (const w of batch) w.reject(failure);
      return;
    }
    for (const w of batch) w.resolve();
  }
}
