// Where the relay hands accepted messages: Kafka in a cluster, the embedded SQLite queue in
// standalone mode. `send` resolves only once the record is durable.
import type { IHeaders } from 'kafkajs';

export interface QueueRecord {
  key: string;
  value: Buffer;
  headers: IHeaders;
}

export interface SubmissionQueue {
  /** True while the queue can take records. */
  readonly connected: boolean;
  send(record: QueueRecord): Promise<void>;
  close(): Promise<void>;
}

/** The record is not stored; the client gets 451 4.3.0 and tries again. */
export class QueueUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueUnavailableError';
  }
}
