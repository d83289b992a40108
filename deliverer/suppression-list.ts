// Recipients that must never be contacted again, per account. The compacted topic
// mtrelay.suppressions is the source of truth (keyed by namespace + address); every
// deliverer reads it whole at start and follows it.
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';

export interface SuppressionEntry {
  namespace: string;
  address: string;
  reason: string;
  bounce_class?: number;
  source: 'bounce' | 'manual';
  created: string;
}

export function suppressionKey(namespace: string, address: string): string {
  return `${namespace}/${address.toLowerCase()}`;
}

export class SuppressionList {
  readonly #entries = new Map<string, SuppressionEntry>();

  has(namespace: string, address: string): boolean {
    return this.#entries.has(suppressionKey(namespace, address));
  }

  add(entry: SuppressionEntry): void {
    this.#entries.set(suppressionKey(entry.namespace, entry.address), entry);
  }

  remove(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Follows the suppressions topic from its beginning; resolves once caught up with the end seen at start. */
function parseEntry(value: Buffer): SuppressionEntry | undefined {
  try {
    const entry = JSON.parse(value.toString()) as Partial<SuppressionEntry>;
    return typeof entry.namespace === 'string' && typeof entry.address === 'string' ? (entry as SuppressionEntry) : undefined;
  } catch {
    return undefined;
  }
}

export async function followSuppressions(kafka: Kafka, topic: string, list: SuppressionList,
  onInvalid?: (key: string, offset: string) => void): Promise<Consumer> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const pending = new Map(ends.filter((e) => BigInt(e.high) > 0n).map((e) => [e.partition, BigInt(e.high)]));
  // A group of its own: every deliverer needs every entry, not a share of them.
  const consumer = kafka.consumer({ groupId: `mtrelay-suppressions-${randomUUID()}` });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
  } catch (error) {
    await consumer.disconnect().catch(() => undefined); // the caller may try again with a new one
    throw error;
  }
  let caughtUp: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (caughtUp = resolve));
  if (pending.size === 0) caughtUp();
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const key = message.key?.toString() ?? '';
      if (!message.value) list.remove(key);
      else {
        const entry = parseEntry(message.value);
        // A malformed entry must not stop every deliverer from starting: it is skipped.
        if (entry) list.add(entry);
        else onInvalid?.(key, message.offset);
      }
      const end = pending.get(partition);
      if (end !== undefined && BigInt(message.offset) + 1n >= end) pending.delete(partition);
      if (pending.size === 0) caughtUp();
    },
  });
  await ready;
  return consumer;
}
