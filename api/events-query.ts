// The search parameters of the events API, as SparkPost's Events API names them
// (GET /api/v1/events/message): comma-separated lists of recipients, transmissions, campaigns,
// event types and bounce classes, a time range, and cursor pages of per_page events, newest
// first. Pure: the store turns a query into its own lookup.

export interface EventQuery {
  recipients: string[];
  transmissions: string[];
  campaigns: string[];
  events: string[];
  bounceClasses: number[];
  /** Milliseconds since the epoch; from inclusive, to exclusive. */
  from: number;
  to: number;
  perPage: number;
  /** The last event of the previous page: its time and id. */
  after?: { ts: number; eventId: string };
}

export const EVENT_TYPES = ['injection', 'delivery', 'delay', 'bounce', 'policy_rejection', 'out_of_band', 'spam_complaint', 'open', 'initial_open', 'click', 'list_unsubscribe', 'link_unsubscribe'];
const DAY_MS = 24 * 3600 * 1000;

export class QueryError extends Error {}

const list = (params: URLSearchParams, name: string, max = 100) => {
  const values = (params.get(name) ?? '').split(',').map((v) => v.trim()).filter(Boolean);
  if (values.length > max) throw new QueryError(`${name}: at most ${max} values`);
  return values;
};

function time(params: URLSearchParams, name: string, fallback: number): number {
  const value = params.get(name);
  if (value === null) return fallback;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new QueryError(`${name}: "${value}" is not a time (ISO 8601, e.g. 2026-11-30T08:00:00Z)`);
  return ms;
}

export function encodeCursor(ts: number, eventId: string): string {
  return Buffer.from(`${ts}:${eventId}`).toString('base64url');
}

export function decodeCursor(cursor: string): { ts: number; eventId: string } {
  const match = /^(\d+):(.+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new QueryError('cursor: not one this API gave out');
  return { ts: Number(match[1]), eventId: match[2]! };
}

/** The query of a request's parameters; the default range is the last 24 hours. */
export function parseEventQuery(params: URLSearchParams, now = Date.now()): EventQuery {
  const known = new Set(['recipients', 'transmissions', 'campaigns', 'events', 'bounce_classes', 'from', 'to', 'per_page', 'cursor']);
  for (const name of params.keys()) if (!known.has(name)) throw new QueryError(`${name} is not a search parameter (known: ${[...known].join(', ')})`);
  const events = list(params, 'events');
  const unknown = events.filter((e) => !EVENT_TYPES.includes(e));
  if (unknown.length) throw new QueryError(`events: ${unknown.join(', ')} is not an event type (known: ${EVENT_TYPES.join(', ')})`);
  const bounceClasses = list(params, 'bounce_classes').map(Number);
  if (bounceClasses.some((c) => !Number.isInteger(c) || c < 1 || c > 100)) throw new QueryError('bounce_classes: whole numbers from 1 to 100');
  const to = time(params, 'to', now);
  const from = time(params, 'from', to - DAY_MS);
  if (from >= to) throw new QueryError('from must be before to');
  const perPage = Number(params.get('per_page') ?? 1000);
  if (!Number.isInteger(perPage) || perPage < 1 || perPage > 10_000) throw new QueryError('per_page: a whole number from 1 to 10000');
  const cursor = params.get('cursor');
  const after = cursor ? decodeCursor(cursor) : undefined;
  return {
    recipients: list(params, 'recipients').map((r) => r.toLowerCase()), transmissions: list(params, 'transmissions'), campaigns: list(params, 'campaigns'),
    events, bounceClasses, from, to, perPage, ...(after ? { after } : {}),
  };
}
