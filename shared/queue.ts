// Where the relay hands accepted messages: Kafka in a cluster, the embedded SQLite queue in
// standalone mode. The record is the queue's own shape (plain string headers), so neither
// runtime's client library leaks into the code both share. `send` resolves only once the
// record is durable.
import { MtrelayError } from './errors.ts';

export type RecordHeaders = Record<string, string>;

export interface QueueRecord {
  key: string;
  value: Buffer;
  headers: RecordHeaders;
}

export interface SubmissionQueue {
  /** True while the queue can take records. */
  readonly connected: boolean;
  send(record: QueueRecord): Promise<void>;
  close(): Promise<void>;
}

/** The record is not stored; the client gets 451 4.3.0 and tries again. */
export class QueueUnavailableError extends MtrelayError {
  constructor(message: string, options?: ErrorOptions) {
    super('MTR_ERR_QUEUE_UNAVAILABLE', message, options);
  }
}

/** The record is not stored because the disk is full; the client gets 452 4.3.1 and tries again later. */
export class StorageFullError extends MtrelayError {
  constructor(message: string, options?: ErrorOptions) {
    super('MTR_ERR_STORAGE_FULL', message, options);
  }
}

/** Whether an error from writing a file or SQLite means the file system is full. */
export function isStorageFull(error: unknown): boolean {
  const e = error as { code?: string; errcode?: number };
  return e?.code === 'ENOSPC' || e?.code === 'EDQUOT' || (e?.code === 'ERR_SQLITE_ERROR' && e.errcode === 13 /* SQLITE_FULL */);
}
