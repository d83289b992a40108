// What both events stores (standalone's SQLite, the cluster's PostgreSQL) keep of an event: the
// columns searches filter on, beside the event's JSON exactly as it was published. Also the
// filter of a search, written once for both SQL dialects.
import type { EventQuery } from './events-query.ts';

export type IndexedEvent = Record<string, unknown> & { event_id: string; namespace: string; timestamp: string; type: string };

export interface EventPage {
  results: IndexedEvent[];
  /** The cursor of the next page, when there may be one. */
  next?: string;
}

/** Where events are searched: standalone's SQLite index or the cluster's PostgreSQL. */
export interface EventSearch {
  search(namespace: string, query: EventQuery): EventPage | Promise<EventPage>;
}

export interface EventRow {
  eventId: string;
  namespace: string;
  /** Milliseconds since the epoch. */
  ts: number;
  type: string;
  transmissionId: string | null;
  rcptTo: string | null;
  campaignId: string | null;
  bounceClass: number | null;
  json: string;
}

const text = (v: unknown) => (typeof v === 'string' ? v : null);

/** The row of one published event (a JSON line or record value); undefined when it is not an event. */
export function eventRow(json: string): EventRow | undefined {
  let e: Partial<IndexedEvent>;
  try {
    e = JSON.parse(json) as Partial<IndexedEvent>;
  } catch {
    return undefined;
  }
  if (typeof e.event_id !== 'string' || typeof e.namespace !== 'string' || typeof e.type !== 'string') return undefined;
  return {
    eventId: e.event_id, namespace: e.namespace, ts: Date.parse(String(e.timestamp)) || 0, type: e.type,
    transmissionId: text(e.transmission_id), rcptTo: text(e.rcpt_to)?.toLowerCase() ?? null, campaignId: text(e.campaign_id),
    bounceClass: typeof e.bounce_class === 'number' ? e.bounce_class : null, json,
  };
}

/**
 * The index a search should use: by recipient or transmission when it names some (a few rows
 * each, whatever the time range), else by account and time (newest first, stopping at the
 * page). Planners left alone scan by time for the ORDER BY … LIMIT and filter the whole range.
 */
export function eventIndex(q: EventQuery): 'by_transmission' | 'by_recipient' | 'by_time' {
  return q.transmissions.length ? 'by_transmission' : q.recipients.length ? 'by_recipient' : 'by_time';
}

/**
 * The WHERE clause of a search over columns named as in both stores (namespace, ts, event_id,
 * rcpt_to, transmission_id, campaign_id, type, bounce_class); `param` writes the placeholder of
 * the n-th argument (1-based) and `time` a time as the store keeps it.
 */
export function eventFilter(namespace: string, q: EventQuery, param: (n: number) => string, time: (ms: number) => unknown): { where: string; args: unknown[] } {
  const args: unknown[] = [];
  const arg = (value: unknown) => {
    args.push(value);
    return param(args.length);
  };
  const where = [`namespace = ${arg(namespace)}`, `ts >= ${arg(time(q.from))}`, `ts < ${arg(time(q.to))}`];
  const any = (column: string, values: (string | number)[]) => {
    if (values.length) where.push(`${column} IN (${values.map(arg).join(', ')})`);
  };
  any('rcpt_to', q.recipients);
  any('transmission_id', q.transmissions);
  any('campaign_id', q.campaigns);
  any('type', q.events);
  any('bounce_class', q.bounceClasses);
  if (q.after) where.push(`(ts < ${arg(time(q.after.ts))} OR (ts = ${arg(time(q.after.ts))} AND event_id < ${arg(q.after.eventId)}))`);
  return { where: where.join(' AND '), args };
}
