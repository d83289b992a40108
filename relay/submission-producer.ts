// Produces submissions to Kafka with acks=all and an idempotent producer, and answers each
// caller only once the broker has acknowledged its record. While one request is in flight
// the next records gather into one batch, which keeps latency low when idle and batches
// grow under load. Every record has a deadline: past it the caller gets an error (451),
// never a silent wait.
import type { CompressionTypes, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Histogram } from 'prom-client';
import { QueueUnavailableError, type QueueRecord, type SubmissionQueue } from '../shared/queue.ts';

interface Pending {
  message: QueueRecord;
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  settled: boolean;
}

export interface SubmissionProducerOptions {
  kafka: Kafka;
  topic: string;
  logger: Logger;
  /** How long a caller waits for the broker's acknowledgement before giving up. */
  timeoutMs: number;
  produceSeconds?: Histogram;
  maxBatchRecords?: number;
  /** How long a record arriving at an idle producer waits for others to share its request (default 0). */
  lingerMs?: number;
  /** kafkajs's compression of each request's records (default none). */
  compression?: CompressionTypes;
  /**
   * A batch is one message to the broker, so it must stay under the topic's max.message.bytes:
   * pass the relay's SIZE (the topic allows that plus room for record framing). Default 16 MiB.
   */
  maxBatchBytes?: number;
}

/** kafkajs's CompressionTypes.None. */
const NO_COMPRESSION = 0;

/** What a record weighs in a batch: its value and its headers. */
const recordBytes = (record: QueueRecord) =>
  record.value.length + Object.entries(record.headers).reduce((n, [name, value]) => n + name.length + Buffer.byteLength(String(value)), 0);

export class SubmissionProducer implements SubmissionQueue {
  readonly #options: SubmissionProducerOptions;
  #producer: Producer | undefined;
  #connected = false;
  #closed = false;
  #lingerTimer: NodeJS.Timeout | undefined;
  /** The partition of the batch being produced; the next batch takes the next partition. */
  #partition = Math.floor(Math.random() * 1024);
  #queue: Pending[] = [];
  #inFlight: Promise<void> | undefined;
  #reconnecting: Promise<void> | undefined;
  #firstConnection = Promise.withResolvers<void>();

  constructor(options: SubmissionProducerOptions) {
    this.#options = options;
  }

  /** Resolves once a producer has connected for the first time (or the producer is closed). */
  whenConnected(): Promise<void> {
    return this.#firstConnection.promise;
  }

  /** True while a producer is connected and its last request did not fail. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Starts connecting in the background; `connected` turns true once the broker answers. */
  start(): void {
    void this.#reconnect();
  }

  #reconnect(): Promise<void> {
    this.#reconnecting ??= (async () => {
      while (!this.#closed && !this.#connected) {
        const producer = this.#options.kafka.producer({
          idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false,
          // Every record of a batch goes to one partition (records need no order or key
          // locality): one record batch and one log append per request instead of one per record.
          createPartitioner: () => ({ partitionMetadata }) => this.#partition % partitionMetadata.length,
        });
        try {
          await producer.connect();
          if (this.#closed) {
            await producer.disconnect();
            return;
          }
          this.#producer = producer;
          this.#connected = true;
          this.#firstConnection.resolve();
          this.#options.logger.info('Kafka producer connected');
        } catch (error) {
          this.#options.logger.warn({ err: error }, 'Kafka producer cannot connect; retrying');
          await producer.disconnect().catch(() => undefined);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })().finally(() => {
      this.#reconnecting = undefined;
    });
    return this.#reconnecting;
  }

  /** Resolves once the broker acknowledged the record; rejects with QueueUnavailableError otherwise. */
  send(message: QueueRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new QueueUnavailableError('producer is closed'));
    if (!this.#connected) return Promise.reject(new QueueUnavailableError('not connected to Kafka'));
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = {
        message,
        bytes: recordBytes(message),
        resolve,
        reject,
        settled: false,
        timer: setTimeout(() => this.#settle(pending, new QueueUnavailableError(`no acknowledgement from Kafka within ${this.#options.timeoutMs} ms`)), this.#options.timeoutMs),
      };
      this.#queue.push(pending);
      // An idle producer waits lingerMs for company; a busy one batches whatever arrives while its request is out.
      if (this.#options.lingerMs && !this.#inFlight) this.#lingerTimer ??= setTimeout(() => this.#pump(), this.#options.lingerMs);
      else this.#pump();
    });
  }

  #settle(pending: Pending, error?: Error): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    if (error) pending.reject(error);
    else pending.resolve();
  }

  #takeBatch(): Pending[] {
    const maxRecords = this.#options.maxBatchRecords ?? 500;
    const maxBytes = this.#options.maxBatchBytes ?? 16 * 1024 * 1024;
    const batch: Pending[] = [];
    let bytes = 0;
    while (this.#queue.length && batch.length < maxRecords) {
      const next = this.#queue[0]!;
      if (batch.length && bytes + next.bytes > maxBytes) break;
      this.#queue.shift();
      if (next.settled) continue; // timed out while waiting
      batch.push(next);
      bytes += next.bytes;
    }
    return batch;
  }

  #pump(): void {
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    if (this.#inFlight || !this.#queue.length) return;
    const batch = this.#takeBatch();
    const producer = this.#producer;
    if (!batch.length) return;
    if (!producer || !this.#connected) {
      for (const p of batch) this.#settle(p, new QueueUnavailableError('not connected to Kafka'));
      return;
    }
    const stopTimer = this.#options.produceSeconds?.startTimer();
    this.#partition += 1;
    this.#inFlight = producer
      .send({ topic: this.#options.topic, acks: -1, compression: this.#options.compression ?? NO_COMPRESSION, messages: batch.map((p) => p.message) })
      .then(
        () => {
          stopTimer?.({ result: 'ok' });
          for (const p of batch) this.#settle(p);
        },
        (error: Error) => {
          stopTimer?.({ result: 'error' });
          this.#options.logger.warn({ err: error, records: batch.length }, 'Kafka produce failed');
          for (const p of batch) this.#settle(p, new QueueUnavailableError(error.message, { cause: error }));
          void this.#reset(producer);
        },
      )
      .finally(() => {
        this.#inFlight = undefined;
        this.#pump();
      });
  }

  /** A producer whose request failed may hold a broken sequence; start over with a new one. */
  async #reset(failed: Producer): Promise<void> {
    if (this.#producer !== failed) return;
    this.#connected = false;
    this.#producer = undefined;
    await failed.disconnect().catch(() => undefined);
    if (!this.#closed) void this.#reconnect();
  }

  /** Waits for records already handed over, then disconnects. */
  async close(): Promise<void> {
    while (this.#queue.length || this.#inFlight) {
      this.#pump();
      await (this.#inFlight ?? new Promise((r) => setTimeout(r, 10)));
    }
    this.#closed = true;
    this.#connected = false;
    this.#firstConnection.resolve();
    await this.#reconnecting;
    await this.#producer?.disconnect().catch(() => undefined);
    this.#producer = undefined;
  }
}
