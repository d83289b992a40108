// The cluster's events store: PostgreSQL, one table partitioned by day (mtrelay_events_YYYYMMDD,
// UTC), so retention drops whole partitions instead of deleting rows. Filled by the API role's
// consumer of mtrelay.events; inserts are idempotent (a record consumed twice after a rebalance
// or a crash is one row: its primary key is the event's time and event_id, and a conflict
// inserts nothing).
import pg from 'pg';
import type { Logger } from 'pino';
import { encodeCursor, type EventQuery } from './events-query.ts';
import { eventFilter, eventIndex, type EventPage, type EventRow, type EventSearch, type IndexedEvent } from './event-rows.ts';

const DAY_MS = 24 * 3600 * 1000;
const TABLE = 'mtrelay_events';
/** PostgreSQL's check_violation, which an insert gets when no partition takes a row. */
const NO_PARTITION_FOR_ROW = '23514';

/** The partition holding the UTC day of `ms`: its name and bounds. */
export function partitionOf(ms: number): { name: string; from: string; to: string } {
  const start = Math.floor(ms / DAY_MS) * DAY_MS;
  const day = new Date(start).toISOString().slice(0, 10);
  return { name: `${TABLE}_${day.replaceAll('-', '')}`, from: new Date(start).toISOString(), to: new Date(start + DAY_MS).toISOString() };
}

/** The start of the day a partition name stands for, or undefined for a table that is not one of ours. */
function partitionDay(name: string): number | undefined {
  const match = new RegExp(`^${TABLE}_(\\d{4})(\\d{2})(\\d{2})$`).exec(name);
  return match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : undefined;
}

export interface PostgresEventStoreOptions {
  /** A libpq connection URI (postgres://user:password@host:port/db?sslmode=…). */
  url: string;
  retentionDays: number;
  logger: Logger;
  /** Connections to the database (inserts and searches share them). */
  poolSize?: number;
}

export class PostgresEventStore implements EventSearch {
  readonly #pool: pg.Pool;
  readonly #retentionMs: number;
  readonly #logger: Logger;
  /** Partitions known to exist, by name. */
  readonly #partitions = new Set<string>();

  constructor(options: PostgresEventStoreOptions) {
    this.#pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 4, connectionTimeoutMillis: 10_000 });
    // An idle connection the server closed (restart, failover) is replaced by the next query.
    this.#pool.on('error', (error) => options.logger.warn({ err: error }, 'an idle events database connection failed'));
    this.#retentionMs = options.retentionDays * DAY_MS;
    this.#logger = options.logger;
  }

  /** Creates the table and its indexes when missing, and drops partitions past the retention. */
  async open(): Promise<void> {
    await this.#locked(async (client) => {
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${TABLE} (
          ts timestamptz NOT NULL, event_id text NOT NULL, namespace text NOT NULL, type text NOT NULL,
          transmission_id text, rcpt_to text, campaign_id text, bounce_class smallint, body json NOT NULL,
          PRIMARY KEY (ts, event_id)
        ) PARTITION BY RANGE (ts);
        CREATE INDEX IF NOT EXISTS ${TABLE}_by_time ON ${TABLE} (namespace, ts, event_id);
        CREATE INDEX IF NOT EXISTS ${TABLE}_by_recipient ON ${TABLE} (namespace, rcpt_to, ts);
        CREATE INDEX IF NOT EXISTS ${TABLE}_by_transmission ON ${TABLE} (namespace, transmission_id, ts);
      `);
    });
    await this.prune();
  }

  /**
   * Runs `fn` in a transaction holding the store's advisory lock, so API pods starting together
   * or creating the same day's partition do not race each other's DDL.
   */
  async #locked<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('${TABLE}'))`);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async #ensurePartitions(rows: EventRow[]): Promise<void> {
    const missing = new Map(rows.map((r) => partitionOf(r.ts)).filter((p) => !this.#partitions.has(p.name)).map((p) => [p.name, p]));
    if (!missing.size) return;
    await this.#locked(async (client) => {
      for (const p of missing.values()) {
        await client.query(`CREATE TABLE IF NOT EXISTS ${p.name} PARTITION OF ${TABLE} FOR VALUES FROM ('${p.from}') TO ('${p.to}')`);
      }
    });
    for (const name of missing.keys()) this.#partitions.add(name);
  }

  /**
   * Stores events; one already there is left as it is. Events older than the retention are not
   * stored (their day's partition is gone or about to go). Returns how many rows were new.
   */
  async insert(rows: EventRow[], now = Date.now()): Promise<number> {
    const kept = rows.filter((r) => r.ts >= now - this.#retentionMs);
    if (!kept.length) return 0;
    await this.#ensurePartitions(kept);
    try {
      return await this.#insertRows(kept);
    } catch (error) {
      // A partition this pod knew was dropped behind its back (by hand, or by another pod's
      // clock): forget what it knew and make them again, once.
      if ((error as { code?: string }).code !== NO_PARTITION_FOR_ROW) throw error;
      this.#partitions.clear();
      await this.#ensurePartitions(kept);
      return this.#insertRows(kept);
    }
  }

  async #insertRows(kept: EventRow[]): Promise<number> {
    const column = <T>(pick: (r: EventRow) => T) => kept.map(pick);
    const result = await this.#pool.query(
      `INSERT INTO ${TABLE} (ts, event_id, namespace, type, transmission_id, rcpt_to, campaign_id, bounce_class, body)
       SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::smallint[], $9::json[])
       ON CONFLICT DO NOTHING`,
      [column((r) => new Date(r.ts).toISOString()), column((r) => r.eventId), column((r) => r.namespace), column((r) => r.type),
        column((r) => r.transmissionId), column((r) => r.rcptTo), column((r) => r.campaignId), column((r) => r.bounceClass), column((r) => r.json)],
    );
    return result.rowCount ?? 0;
  }

  /** Drops the day partitions that end before the retention starts; returns their names. */
  async prune(now = Date.now()): Promise<string[]> {
    const { rows } = await this.#pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1`, [TABLE]);
    const expired = rows.map((r) => r.name).filter((name) => {
      const day = partitionDay(name);
      return day !== undefined && day + DAY_MS <= now - this.#retentionMs;
    });
    if (expired.length) {
      await this.#locked(async (client) => {
        for (const name of expired) await client.query(`DROP TABLE IF EXISTS ${name}`);
      });
      for (const name of expired) this.#partitions.delete(name);
      this.#logger.info({ partitions: expired }, 'dropped events partitions past the retention');
    }
    return expired;
  }

  /** One page of an account's events that match, newest first. */
  async search(namespace: string, q: EventQuery): Promise<EventPage> {
    const { where, args } = eventFilter(namespace, q, (n) => `$${n}`, (ms) => new Date(ms).toISOString());
    const columns = `(extract(epoch FROM ts) * 1000)::bigint AS ms, ts, event_id, body`;
    const order = `ORDER BY ts DESC, event_id DESC LIMIT ${q.perPage + 1}`;
    // A recipient's or a transmission's events are few: found first by their index, then
    // sorted (PostgreSQL has no index hints; a materialised CTE keeps it from walking the time index).
    const sql = eventIndex(q) === 'by_time'
      ? `SELECT ${columns} FROM ${TABLE} WHERE ${where} ${order}`
      : `WITH found AS MATERIALIZED (SELECT ${columns} FROM ${TABLE} WHERE ${where}) SELECT * FROM found ${order}`;
    const { rows } = await this.#pool.query<{ ms: string; event_id: string; body: IndexedEvent }>(sql, args);
    const page = rows.slice(0, q.perPage);
    const last = page.at(-1);
    return { results: page.map((r) => r.body), ...(rows.length > q.perPage && last ? { next: encodeCursor(Number(last.ms), last.event_id) } : {}) };
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
