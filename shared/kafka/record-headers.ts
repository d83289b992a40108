// Kafka headers arrive as Buffers (or arrays of them); the queue's records carry plain
// strings. The conversion happens here, at the edge of the Kafka runtime, and nowhere else.
import type { IHeaders } from 'kafkajs';
import type { RecordHeaders } from '../queue.ts';

/** The first value of every header, as UTF-8 text. */
export function recordHeaders(headers: IHeaders | undefined): RecordHeaders {
  const out: RecordHeaders = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}
