// Standalone's events store: every event the event log gets is indexed in <state>/events.db
// (SQLite), by account and time, recipient and transmission, for the events API. Inserts are
// idempotent by event_id (a line appended twice after a crash is one event); events older than
// the retention are deleted every hour.
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import type { EventQuery } from '../api/events-query.ts';
import { encodeCursor } from '../api/events-query.ts';
import { eventFilter, eventIndex, eventRow, type EventPage, type EventSearch, type IndexedEvent } from '../api/event-rows.ts';

export class SqliteEventStore implements EventSearch {
  readonly #db: DatabaseSync;
  readonly #retentionMs: number;
  #pruned = 0;

  constructor(file: string, retentionDays: number) {
    this.#retentionMs = retentionDays * 24 * 3600 * 1000;
    this.#db = new DatabaseSync(file);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      -- 32 MiB of pages (the default is 2 MiB): inserts by random event_id touch pages all over the table.
      PRAGMA cache_size = -32768;
      CREATE TABLE IF NOT EXISTS events (
        event_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, ts INTEGER NOT NULL, type TEXT NOT NULL,
        transmission_id TEXT, rcpt_to TEXT, campaign_id TEXT, bounce_class INTEGER, json TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS events_by_time ON events (namespace, ts, event_id);
      CREATE INDEX IF NOT EXISTS events_by_recipient ON events (namespace, rcpt_to, ts);
      CREATE INDEX IF NOT EXISTS events_by_transmission ON events (namespace, transmission_id, ts);
    `);
  }

  /** Indexes events (JSON lines of the event log); one already there is left as it is. */
  insert(lines: string[]): void {
    const insert = this.#db.prepare('INSERT OR IGNORE INTO events (event_id, namespace, ts, type, transmission_id, rcpt_to, campaign_id, bounce_class, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.#db.exec('BEGIN');
    try {
      for (const line of lines) {
        const r = eventRow(line);
        if (r) insert.run(r.eventId, r.namespace, r.ts, r.type, r.transmissionId, r.rcptTo, r.campaignId, r.bounceClass, r.json);
      }
      this.#db.exec('COMMIT');
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
    if (Date.now() - this.#pruned > 3600_000) this.prune();
  }

  /** Deletes events older than the retention. */
  prune(now = Date.now()): number {
    this.#pruned = now;
    return Number(this.#db.prepare('DELETE FROM events WHERE ts < ?').run(now - this.#retentionMs).changes);
  }

  /** One page of an account's events that match, newest first. */
  search(namespace: string, q: EventQuery): EventPage {
    const { where, args } = eventFilter(namespace, q, () => '?', (ms) => ms);
    const rows = this.#db.prepare(`SELECT ts, event_id, json FROM events INDEXED BY events_${eventIndex(q)} WHERE ${where} ORDER BY ts DESC, event_id DESC LIMIT ?`)
      .all(...(args as SQLInputValue[]), q.perPage + 1) as { ts: number; event_id: string; json: string }[];
    const page = rows.slice(0, q.perPage);
    const last = page.at(-1);
    return { results: page.map((r) => JSON.parse(r.json) as IndexedEvent), ...(rows.length > q.perPage && last ? { next: encodeCursor(last.ts, last.event_id) } : {}) };
  }

  close(): void {
    this.#db.close();
  }
}
