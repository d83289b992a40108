// Recipients that must never be contacted again, per account. The compacted topic
// mtrelay.suppressions is the source of truth (keyed by namespace + address); every
// deliverer reads it whole at start and follows it.
import type { Consumer, Kafka } from 'kafkajs';
import { followTopic } from '../shared/kafka/follow-topic.ts';

export interface SuppressionEntry {
  namespace: string;
  address: string;
  reason: string;
  bounce_class?: number;
  /** What put it there: a hard bounce (in-band or out-of-band), a spam complaint, an unsubscribe, or a person. */
  source: 'bounce' | 'complaint' | 'unsubscribe' | 'manual';
  /** non_transactional: only mail not marked transactional is held back (a complaint); absent: all mail. */
  type?: 'non_transactional';
  created: string;
}

/**
 * The entry's key in the compacted topic and the list. An entry for non-transactional mail
 * only has a key of its own, so a complaint never replaces (weakens) a hard bounce's entry for
 * the same address; an address cannot contain "#" after its "@".
 */
export function suppressionKey(namespace: string, address: string, type?: SuppressionEntry['type']): string {
  return `${namespace}/${address.toLowerCase()}${type ? `#${type}` : ''}`;
}

/** The entry as a record of the compacted topic: keyed so a newer entry of the same kind replaces it. */
export function suppressionRecord(entry: SuppressionEntry): { key: string; value: string } {
  return { key: suppressionKey(entry.namespace, entry.address, entry.type), value: JSON.stringify(entry) };
}

export class SuppressionList {
  readonly #entries = new Map<string, SuppressionEntry>();

  /** Whether mail to `address` is held back: any entry for all mail, or, for mail not marked transactional, one for non-transactional mail. */
  has(namespace: string, address: string, transactional = false): boolean {
    return this.#entries.has(suppressionKey(namespace, address)) || (!transactional && this.#entries.has(suppressionKey(namespace, address, 'non_transactional')));
  }

  add(entry: SuppressionEntry): void {
    this.#entries.set(suppressionKey(entry.namespace, entry.address, entry.type), entry);
  }

  remove(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** An account's entries (both kinds), by address and type in code-unit order (the order the API's cursors compare in). */
  entries(namespace: string): SuppressionEntry[] {
    const order = (e: SuppressionEntry) => `${e.address}\u0000${e.type ?? ''}`;
    return [...this.#entries.values()].filter((e) => e.namespace === namespace)
      .sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  }

  /** The entries for one address of an account (for all mail, for non-transactional mail, or both). */
  lookup(namespace: string, address: string): SuppressionEntry[] {
    return [undefined, 'non_transactional' as const].map((type) => this.#entries.get(suppressionKey(namespace, address, type))).filter((e) => e !== undefined);
  }
}

function parseEntry(value: Buffer): SuppressionEntry | undefined {
  try {
    const entry = JSON.parse(value.toString()) as Partial<SuppressionEntry>;
    return typeof entry.namespace === 'string' && typeof entry.address === 'string' ? (entry as SuppressionEntry) : undefined;
  } catch {
    return undefined;
  }
}

/** Follows the suppressions topic from its beginning; resolves once caught up with the end seen at start. */
export function followSuppressions(kafka: Kafka, topic: string, list: SuppressionList,
  onInvalid?: (key: string, offset: string) => void): Promise<Consumer> {
  return followTopic({
    kafka, topic, groupPrefix: 'mtrelay-suppressions',
    onRecord: (message) => {
      const key = message.key?.toString() ?? '';
      if (!message.value) {
        list.remove(key);
        return;
      }
      const entry = parseEntry(message.value);
      // A malformed entry must not stop every deliverer from starting: it is skipped.
      if (entry) list.add(entry);
      else onInvalid?.(key, message.offset);
    },
  });
}
