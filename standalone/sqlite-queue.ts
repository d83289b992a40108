// The embedded durable queue of standalone mode: SQLite in WAL mode with synchronous=FULL,
// so a record is on disk before the relay answers 250. Work is leased, not removed, until
// its outcome is committed in the same transaction as its events, retry and suppressions:
// a process killed at any point redelivers, never loses.
import { appendFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import type { SuppressionEntry } from '../deliverer/suppression-list.ts';
import { QueueUnavailableError, type QueueRecord, type SubmissionQueue } from '../shared/queue.ts';

const LEASED = Number.MAX_SAFE_INTEGER;

export interface QueuedJob {
  id: number;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

export interface JobOutcome {
  retry?: { headers: Record<string, string>; notBefore: number };
  events: object[];
  suppressions: SuppressionEntry[];
}

interface Pending {
  record: QueueRecord;
  resolve: () => void;
  reject: (error: Error) => void;
}

function plainHeaders(headers: QueueRecord['headers']): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? String(v[0]) : String(v)]));
}

export class SqliteQueue implements SubmissionQueue {
  readonly #db: DatabaseSync;
  readonly #eventsLog: string;
  #pending: Pending[] = [];
  #finished: { job: QueuedJob; outcome: JobOutcome; resolve: () => void; reject: (error: Error) => void }[] = [];
  #closed = false;
  /** Called after new work is committed, so the delivery loop need not wait for its poll. */
  onWork: () => void = () => undefined;

  constructor(file: string, eventsLog: string) {
    this.#eventsLog = eventsLog;
    this.#db = new DatabaseSync(file);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        headers TEXT NOT NULL,
        not_before INTEGER NOT NULL DEFAULT 0,
        leased_until INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS jobs_due ON jobs (not_before, id);
      CREATE TABLE IF NOT EXISTS events_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, key TEXT, value BLOB, headers TEXT, reason TEXT, at INTEGER);
      CREATE TABLE IF NOT EXISTS suppressions (
        namespace TEXT NOT NULL, address TEXT NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (namespace, address)
      );
    `);
    // One process owns the folder: leases of a previous (killed) run are void.
    this.#db.exec('UPDATE jobs SET leased_until = 0');
    this.#flushEvents();
  }

  get connected(): boolean {
    return !this.#closed;
  }

  /** Resolves once the record is committed to disk; records that arrive together share one commit. */
  send(record: QueueRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new QueueUnavailableError('the queue is closed'));
    return new Promise((resolve, reject) => {
      this.#pending.push({ record, resolve, reject });
      if (this.#pending.length === 1) setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    const batch = this.#pending;
    this.#pending = [];
    if (!batch.length) return;
    const insert = this.#db.prepare('INSERT INTO jobs (key, value, headers) VALUES (?, ?, ?)');
    const error = this.#transaction(() => {
      for (const { record } of batch) insert.run(record.key, record.value, JSON.stringify(plainHeaders(record.headers)));
    });
    if (error) {
      for (const p of batch) p.reject(new QueueUnavailableError(`the local queue cannot store the message: ${error.message}`));
      return;
    }
    for (const p of batch) p.resolve();
    this.onWork();
  }

  /** Runs `work` in one write transaction; returns the error that rolled it back, if any. */
  #transaction(work: () => void): Error | undefined {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      work();
      this.#db.exec('COMMIT');
      return undefined;
    } catch (error) {
      try { this.#db.exec('ROLLBACK'); } catch { /* no transaction left */ }
      return error as Error;
    }
  }

  /**
   * Leases up to `limit` due jobs. One process owns the queue and a job stays leased for as
   * long as it is being delivered (however long that takes): leases only end with the
   * process, and the next start voids them.
   */
  claim(limit: number, now = Date.now()): QueuedJob[] {
    if (limit <= 0) return [];
    const rows = this.#db.prepare(
      'UPDATE jobs SET leased_until = ? WHERE id IN (SELECT id FROM jobs WHERE not_before <= ? AND leased_until < ? ORDER BY not_before, id LIMIT ?) RETURNING id, key, value, headers',
    ).all(LEASED, now, LEASED, limit) as { id: number; key: string; value: Uint8Array; headers: string }[];
    return rows.map((r) => ({ id: r.id, key: r.key, value: Buffer.from(r.value), headers: JSON.parse(r.headers) as Record<string, string> }));
  }

  /** When the next job falls due, or undefined when the queue is empty. */
  nextDue(): number | undefined {
    const row = this.#db.prepare('SELECT MIN(not_before) AS due FROM jobs WHERE leased_until = 0').get() as { due: number | null };
    return row.due ?? undefined;
  }

  /**
   * Commits a job's outcome: the job goes, its retry, events and suppressions come, all in
   * one transaction. Outcomes that finish together share one commit (one fsync), as
   * submissions do; the promise resolves once the commit is on disk.
   */
  complete(job: QueuedJob, outcome: JobOutcome): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#finished.push({ job, outcome, resolve, reject });
      if (this.#finished.length === 1) setImmediate(() => this.#commitFinished());
    });
  }

  #commitFinished(): void {
    const batch = this.#finished;
    this.#finished = [];
    if (!batch.length) return;
    const remove = this.#db.prepare('DELETE FROM jobs WHERE id = ?');
    const retry = this.#db.prepare('INSERT INTO jobs (key, value, headers, not_before) VALUES (?, ?, ?, ?)');
    const event = this.#db.prepare('INSERT INTO events_outbox (json) VALUES (?)');
    const suppress = this.#db.prepare('INSERT OR REPLACE INTO suppressions (namespace, address, entry) VALUES (?, ?, ?)');
    const error = this.#transaction(() => {
      for (const { job, outcome } of batch) {
        // A job finished twice (it cannot be, but if it were) must not double its outcome.
        if (remove.run(job.id).changes === 0) continue;
        if (outcome.retry) retry.run(job.key, job.value, JSON.stringify(outcome.retry.headers), outcome.retry.notBefore);
        for (const e of outcome.events) event.run(JSON.stringify(e));
        for (const x of outcome.suppressions) suppress.run(x.namespace, x.address, JSON.stringify(x));
      }
    });
    if (error) {
      for (const f of batch) f.reject(error);
      return;
    }
    this.#flushEvents();
    for (const f of batch) f.resolve();
    this.onWork();
  }

  /** Moves committed events to the JSON-lines event log (an outbox, so none is lost in a crash). */
  #flushEvents(): void {
    const rows = this.#db.prepare('SELECT id, json FROM events_outbox ORDER BY id').all() as { id: number; json: string }[];
    if (!rows.length) return;
    appendFileSync(this.#eventsLog, rows.map((r) => `${r.json}\n`).join(''));
    this.#db.prepare('DELETE FROM events_outbox WHERE id <= ?').run(rows.at(-1)!.id);
  }

  /** A job that cannot be delivered at all (unreadable, or a failure of our own) is set aside, not retried forever. */
  deadLetter(job: QueuedJob, reason: string): void {
    const error = this.#transaction(() => {
      this.#db.prepare('INSERT INTO dead_letters (id, key, value, headers, reason, at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(job.id, job.key, job.value, JSON.stringify(job.headers), reason, Date.now());
      this.#db.prepare('DELETE FROM jobs WHERE id = ?').run(job.id);
    });
    if (error) throw error;
  }

  suppressions(): SuppressionEntry[] {
    return (this.#db.prepare('SELECT entry FROM suppressions').all() as { entry: string }[]).map((r) => JSON.parse(r.entry) as SuppressionEntry);
  }

  /** Jobs not yet finished (waiting or leased). */
  get depth(): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await new Promise((r) => setImmediate(r));
    this.#flush();
    this.#commitFinished();
    this.#closed = true;
    this.#db.close();
  }
}
