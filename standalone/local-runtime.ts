// Feeds the delivery core from the embedded queue: claims what is due, many jobs in flight,
// each finished in one SQLite transaction (the queue is the core's outcome sink).
import { DeliveryCore, type DeliveryCoreOptions } from '../deliverer/delivery-core.ts';
import type { QueuedJob, SqliteQueue } from './sqlite-queue.ts';

export interface LocalRuntimeOptions extends Omit<DeliveryCoreOptions<QueuedJob>, 'sink'> {
  queue: SqliteQueue;
  maxInFlight: number;
}

export class LocalDeliveryRuntime {
  readonly #o: LocalRuntimeOptions;
  readonly #core: DeliveryCore<QueuedJob>;
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;
  #pumpScheduled = false;
  #idle: (() => void) | undefined;

  constructor(options: LocalRuntimeOptions) {
    this.#o = options;
    this.#core = new DeliveryCore({ ...options, sink: options.queue });
    for (const entry of options.queue.suppressions()) options.suppressions.add(entry);
    options.queue.onWork = () => this.#schedulePump();
  }

  start(): void {
    this.#pump();
  }

  /** Jobs that finish together free their slots together: one claim (one write) for all of them. */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** Claims what is due, up to the in-flight limit, and sleeps until the next due job. */
  #pump(): void {
    if (this.#stopping) return;
    clearTimeout(this.#timer);
    for (const job of this.#o.queue.claim(this.#o.maxInFlight - this.#core.inFlight)) {
      void this.#core.run(job)
        // Not even set aside: the job stays leased, and the next start delivers it again.
        .catch((error: unknown) => this.#o.logger.fatal({ err: error, job: job.id }, 'job could not be set aside; it is delivered again at the next start'))
        .finally(() => {
          if (this.#stopping && this.#core.inFlight === 0) this.#idle?.();
          else this.#schedulePump();
        });
    }
    const due = this.#o.queue.nextDue();
    const wait = due === undefined ? 1000 : Math.max(10, Math.min(1000, due - Date.now()));
    this.#timer = setTimeout(() => this.#pump(), wait);
  }

  /** Stops claiming and waits for jobs in flight (leased jobs of a killed process come back at start). */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    if (this.#core.inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
  }
}
