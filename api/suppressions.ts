// The suppression list API, modelled on SparkPost's (/api/v1/suppression-list): list an
// account's entries (cursor pages), look one address up, add or change entries from JSON or a
// CSV file, remove them. Entries hold back all mail, or (type non_transactional) only mail not
// marked transactional. Where the entries live is the store's business: the compacted Kafka
// topic every deliverer follows, or standalone's SQLite queue.
import { parse as parseCsv } from 'csv-parse';
import type { SuppressionEntry } from '../deliverer/suppression-list.ts';
import { compileSchema, describeFirstError } from '../shared/validation.ts';

export interface SuppressionStore {
  entries(namespace: string): SuppressionEntry[];
  lookup(namespace: string, address: string): SuppressionEntry[];
  /** Resolves once the entries are durable (and in force for the deliverers that follow them). */
  put(entries: SuppressionEntry[]): Promise<void>;
  /** Removes these entries; resolves once the removal is durable. */
  remove(entries: SuppressionEntry[]): Promise<void>;
}

/** What a client sees of an entry: SparkPost's field names. */
export function publicEntry(e: SuppressionEntry) {
  return {
    recipient: e.address, type: e.type ?? 'all', source: e.source, description: e.reason, created: e.created,
    ...(e.bounce_class !== undefined ? { bounce_class: e.bounce_class } : {}),
  };
}

export type SuppressionType = 'all' | 'non_transactional';
const storedType = (type: SuppressionType | undefined): SuppressionEntry['type'] => (type === 'non_transactional' ? 'non_transactional' : undefined);

interface RecipientInput { recipient: string; type?: SuppressionType; description?: string }
export const MAX_RECIPIENTS = 100_000;

const validateBody = compileSchema<{ recipients: RecipientInput[] }>({
  type: 'object', additionalProperties: false, required: ['recipients'],
  properties: {
    recipients: {
      type: 'array', minItems: 1, maxItems: MAX_RECIPIENTS,
      items: {
        type: 'object', additionalProperties: false, required: ['recipient'],
        properties: {
          recipient: { type: 'string', format: 'email', maxLength: 320 },
          type: { enum: ['all', 'non_transactional'] },
          description: { type: 'string', maxLength: 1024 },
        },
      },
    },
  },
});

export class InputError extends Error {}

/** The recipients of a JSON body ({"recipients": [{recipient, type, description}]}) or a CSV file (a header row: recipient,type,description). */
export async function parseRecipients(body: string, contentType: string): Promise<RecipientInput[]> {
  let document: unknown;
  if (/^text\/csv\b/i.test(contentType)) {
    const rows = await new Promise<Record<string, string>[]>((resolve, reject) => {
      parseCsv(body, { columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true },
        (error, records: Record<string, string>[]) => (error ? reject(new InputError(`CSV: ${error.message}`)) : resolve(records)));
    });
    document = { recipients: rows.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== ''))) };
  } else {
    try {
      document = JSON.parse(body);
    } catch (error) {
      throw new InputError(`JSON: ${(error as Error).message}`);
    }
  }
  if (!validateBody(document)) throw new InputError(describeFirstError(validateBody.errors));
  return document.recipients;
}

export function manualEntries(namespace: string, recipients: RecipientInput[], now = new Date()): SuppressionEntry[] {
  return recipients.map((r) => ({
    namespace, address: r.recipient.toLowerCase(), reason: r.description ?? 'added through the API', source: 'manual',
    ...(storedType(r.type) ? { type: storedType(r.type) } : {}), created: now.toISOString(),
  }));
}

/** A page of entries after `cursor` (the last address and type of the previous page). */
export function page(entries: SuppressionEntry[], limit: number, cursor: string | undefined) {
  const after = cursor ? Buffer.from(cursor, 'base64url').toString() : '';
  const key = (e: SuppressionEntry) => `${e.address}\u0000${e.type ?? ''}`;
  const rest = after ? entries.filter((e) => key(e) > after) : entries;
  const results = rest.slice(0, limit);
  const next = rest.length > limit ? Buffer.from(key(results.at(-1)!)).toString('base64url') : undefined;
  return { results: results.map(publicEntry), total_count: entries.length, ...(next ? { links: { next: `cursor=${next}` } } : {}) };
}
