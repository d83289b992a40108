// Feeds the dispatcher in standalone mode from the JSON-lines event log, as Kafka feeds it in a
// cluster: lines are read as they are appended, and a checkpoint file keeps the position past
// which every webhook is done (written atomically), so a restart posts what was not done yet and
// nothing twice that was. A first start begins at the log's end: webhooks get new events.
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Dispatcher } from './dispatcher.ts';
import type { StoredEvent } from './sparkpost-shape.ts';

export interface EventLogSourceOptions {
  log: string;
  checkpoint: string;
  dispatcher: Dispatcher;
  logger: Logger;
  pollMs?: number;
}

const READ_CHUNK = 1024 * 1024;

export class EventLogSource {
  readonly #o: EventLogSourceOptions;
  /** Start offsets of lines handed to the dispatcher and not yet done. */
  readonly #inFlight = new Set<number>();
  /** Where the next line starts (all read before it). */
  #readTo = 0;
  #committed = 0;
  #partial: Buffer = Buffer.alloc(0);
  #timer: NodeJS.Timeout | undefined;

  constructor(options: EventLogSourceOptions) {
    this.#o = options;
  }

  start(): void {
    const saved = existsSync(this.#o.checkpoint) ? Number(readFileSync(this.#o.checkpoint, 'utf8').trim()) : NaN;
    const size = existsSync(this.#o.log) ? statSync(this.#o.log).size : 0;
    this.#readTo = Number.isInteger(saved) && saved >= 0 && saved <= size ? saved : size;
    this.#committed = this.#readTo;
    this.#saveCheckpoint();
    this.#timer = setInterval(() => {
      this.#read();
      this.#commit();
    }, this.#o.pollMs ?? 200);
  }

  #read(): void {
    if (!existsSync(this.#o.log)) return;
    const fd = openSync(this.#o.log, 'r');
    try {
      const buffer = Buffer.allocUnsafe(READ_CHUNK);
      for (;;) {
        const position = this.#readTo + this.#partial.length;
        const n = readSync(fd, buffer, 0, READ_CHUNK, position);
        if (n === 0) break;
        this.#lines(Buffer.concat([this.#partial, buffer.subarray(0, n)]));
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Hands over each complete line of `data` (which starts at #readTo); keeps an unfinished last line for later. */
  #lines(data: Buffer): void {
    let start = 0;
    for (let end = data.indexOf(0x0a); end !== -1; end = data.indexOf(0x0a, start)) {
      const offset = this.#readTo + start;
      const line = data.toString('utf8', start, end);
      start = end + 1;
      let event: StoredEvent | undefined;
      try {
        event = JSON.parse(line) as StoredEvent;
      } catch {
        this.#o.logger.warn({ offset }, 'skipped an event log line that is not JSON');
      }
      if (!event || typeof event.namespace !== 'string') continue;
      this.#inFlight.add(offset);
      this.#o.dispatcher.dispatch(event, () => this.#inFlight.delete(offset));
    }
    this.#readTo += start;
    this.#partial = data.subarray(start);
  }

  #commit(): void {
    let next = this.#readTo;
    for (const offset of this.#inFlight) if (offset < next) next = offset;
    if (next === this.#committed) return;
    this.#committed = next;
    this.#saveCheckpoint();
  }

  #saveCheckpoint(): void {
    const temporary = `${this.#o.checkpoint}.tmp`;
    writeFileSync(temporary, `${this.#committed}\n`);
    renameSync(temporary, this.#o.checkpoint);
  }

  /** Drain: read no more, let posts in progress end, keep the position of what is done. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#o.dispatcher.idle();
    this.#commit();
    this.#o.dispatcher.stop();
  }
}
