// How many bytes of message data the relay holds at once, across every session: each DATA in
// progress reserves its bytes as they arrive and gives them back once the message is stored or
// refused. SIZE bounds one message; this bounds their sum, so many concurrent large messages
// cannot take the process past its memory (beyond it the client gets 452 4.3.1 and retries).
export class InFlightBudget {
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** Takes `bytes` if they fit; false (and nothing taken) when they do not. */
  tryReserve(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}
