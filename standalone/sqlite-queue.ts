// The embedded durable queue of standalone mode: SQLite in WAL mode with synchronous=FULL,
// so a record is on disk before the relay answers 250. Work is leased, not removed, until
// its outcome is committed in the same transaction as its events, retry and suppressions:
// a process killed at any point redelivers, never loses. Message bodies live in a table of
// their own: the scheduler's queries (claim, nextDue) read only the jobs index, never a body,
// and a retry points at the body it already has instead of copying it. Bodies of 256 KiB or
// more are files the row names (body-files.ts), written to disk before the row is committed.
import { appendFileSync, existsSync, statSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { DurableOutcome, OutcomeSink } from '../deliverer/delivery-core.ts';
import type { SuppressionEntry } from '../deliverer/suppression-list.ts';
import { QueueUnavailableError, StorageFullError, isStorageFull, type QueueRecord, type RecordHeaders, type SubmissionQueue } from '../shared/queue.ts';
import { BodyFiles } from './body-files.ts';
import { GroupCommit } from './group-commit.ts';
import { migrate } from './sqlite-schema.ts';

/** Why a message was not stored: a full disk (452 4.3.1: try later) or anything else (451 4.3.0). */
function storeFailure(error: Error): Error {
  const message = `the local queue cannot store the message: ${error.message}`;
  return isStorageFull(error) ? new StorageFullError(message, { cause: error }) : new QueueUnavailableError(message, { cause: error });
}

const LEASED = Number.MAX_SAFE_INTEGER;

/** Leases the due jobs, oldest first: a range of the jobs_due index (leased_until = 0, then not_before). */
export const CLAIM = 'UPDATE jobs SET leased_until = ? WHERE id IN (SELECT id FROM jobs WHERE leased_until = 0 AND not_before <= ? ORDER BY not_before, id LIMIT ?) RETURNING id, message_id, key, headers';
/** The first entry of that range. */
export const NEXT_DUE = 'SELECT MIN(not_before) AS due FROM jobs WHERE leased_until = 0';

/** A leased row: its id, its message body's row (and file, if the body is one), and the record it holds. */
export interface QueuedJob {
  id: number;
  messageId: number;
  bodyFile?: string;
  record: QueueRecord;
}

/** A submission on its way into the database, its body already in a file when it is large. */
interface Submission {
  record: QueueRecord;
  bodyFile?: string;
}

const EMPTY = Buffer.alloc(0);
/** How long a job whose body file could not be read (but exists) waits before the next try. */
const BODY_RETRY_MS = 60_000;

export interface SqliteQueueOptions {
  file: string;
  /** The JSON-lines event log events are moved to from the outbox. */
  eventsLog: string;
  /** Events could not be appended to the log; they stay in the outbox and go with the next flush. */
  onEventLogError: (error: Error) => void;
  /** Where bodies of `bodyFileBytes` or more are kept (default: `bodies` beside `file`). */
  bodiesDir?: string;
  /** Bodies this large or larger are files (default 256 KiB). */
  bodyFileBytes?: number;
  /** A job's body file could not be read: set aside when the file is missing, else tried again in a minute. */
  onBodyError?: (error: Error, job: number) => void;
  /** Called with the JSON lines of events once they are in the event log (the events index follows the log this way). */
  onEventsLogged?: (lines: string[]) => void;
}

export class SqliteQueue implements SubmissionQueue, OutcomeSink<QueuedJob> {
  readonly #db: DatabaseSync;
  readonly #eventsLog: string;
  readonly #onEventLogError: (error: Error) => void;
  readonly #submissions: GroupCommit<Submission>;
  readonly #files: BodyFiles;
  readonly #bodyFileBytes: number;
  readonly #onBodyError: (error: Error, job: number) => void;
  readonly #onEventsLogged: (lines: string[]) => void;
  readonly #outcomes: GroupCommit<{ job: QueuedJob; outcome: DurableOutcome }>;
  #closed = false;
  /** Called after new work is committed, so the delivery loop need not wait for its poll. */
  onWork: () => void = () => undefined;

  constructor({ file, eventsLog, onEventLogError, bodiesDir, bodyFileBytes = 256 * 1024, onBodyError = () => undefined, onEventsLogged = () => undefined }: SqliteQueueOptions) {
    this.#eventsLog = eventsLog;
    this.#onEventsLogged = onEventsLogged;
    this.#onEventLogError = onEventLogError;
    this.#bodyFileBytes = bodyFileBytes;
    this.#onBodyError = onBodyError;
    this.#files = new BodyFiles(bodiesDir ?? path.join(path.dirname(file), 'bodies'));
    this.#db = new DatabaseSync(file);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      PRAGMA busy_timeout = 5000;
    `);
    migrate(this.#db);
    // One process owns the folder: leases of a previous (killed) run are void.
    this.#db.exec('UPDATE jobs SET leased_until = 0');
    const named = this.#db.prepare('SELECT file FROM messages WHERE file IS NOT NULL').all() as { file: string }[];
    this.#files.removeOrphans(new Set(named.map((r) => r.file)));
    this.#flushEvents();
    this.#submissions = new GroupCommit({
      write: (records) => this.#insertSubmissions(records),
      failed: (error) => storeFailure(error),
      committed: () => this.onWork(),
    });
    this.#outcomes = new GroupCommit({
      write: (finished) => this.#storeOutcomes(finished),
      committed: () => {
        this.#flushEvents();
        this.onWork();
      },
    });
  }

  get connected(): boolean {
    return !this.#closed;
  }

  /** Resolves once the record is committed to disk; records that arrive together share one commit. */
  async send(record: QueueRecord): Promise<void> {
    if (this.#closed) throw new QueueUnavailableError('the queue is closed');
    let bodyFile: string | undefined;
    if (record.value.length >= this.#bodyFileBytes) {
      try {
        bodyFile = await this.#files.write(record.value);
      } catch (error) {
        throw storeFailure(error as Error);
      }
    }
    return this.#submissions.add({ record, ...(bodyFile ? { bodyFile } : {}) });
  }

  #insertSubmissions(submissions: Submission[]): void {
    const message = this.#db.prepare('INSERT INTO messages (value, file) VALUES (?, ?)');
    const job = this.#db.prepare('INSERT INTO jobs (message_id, key, headers) VALUES (?, ?, ?)');
    const files = submissions.flatMap((s) => (s.bodyFile ? [s.bodyFile] : []));
    try {
      // The files' names reach the disk before the rows that name them.
      if (files.length) this.#files.syncNames();
      this.#transaction(() => {
        for (const { record, bodyFile } of submissions) {
          const body = bodyFile ? message.run(EMPTY, bodyFile) : message.run(record.value, null);
          job.run(body.lastInsertRowid, record.key, JSON.stringify(record.headers));
        }
      });
    } catch (error) {
      this.#files.remove(files);
      throw error;
    }
  }

  /** Runs `work` in one write transaction; throws the error that rolled it back. */
  #transaction(work: () => void): void {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      work();
      this.#db.exec('COMMIT');
    } catch (error) {
      try { this.#db.exec('ROLLBACK'); } catch { /* no transaction left */ }
      throw error;
    }
  }

  /**
   * Leases up to `limit` due jobs. One process owns the queue and a job stays leased for as
   * long as it is being delivered (however long that takes): leases only end with the
   * process, and the next start voids them.
   */
  claim(limit: number, now = Date.now()): QueuedJob[] {
    if (limit <= 0) return [];
    const rows = this.#db.prepare(CLAIM).all(LEASED, now, limit) as { id: number; message_id: number; key: string; headers: string }[];
    const body = this.#db.prepare('SELECT value, file FROM messages WHERE id = ?');
    const jobs: QueuedJob[] = [];
    for (const r of rows) {
      const { value, file } = body.get(r.message_id) as { value: Uint8Array; file: string | null };
      const headers = JSON.parse(r.headers) as RecordHeaders;
      const job: QueuedJob = { id: r.id, messageId: r.message_id, ...(file ? { bodyFile: file } : {}), record: { key: r.key, value: EMPTY, headers } };
      try {
        // node:sqlite returns a Uint8Array; the Buffer shares its memory.
        job.record.value = file ? this.#files.read(file) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      } catch (error) {
        this.#onBodyError(error as Error, r.id);
        // A file that is gone cannot come back: set aside with the reason, never delivered empty.
        // Any other failure (EMFILE, EIO, permissions) may pass: the job waits a minute, its file kept.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.#setAside(job, `its body file ${file} is missing`);
        else this.#db.prepare('UPDATE jobs SET leased_until = 0, not_before = ? WHERE id = ?').run(now + BODY_RETRY_MS, r.id);
        continue;
      }
      jobs.push(job);
    }
    return jobs;
  }

  /** When the next job falls due, or undefined when the queue is empty. */
  nextDue(): number | undefined {
    const row = this.#db.prepare(NEXT_DUE).get() as { due: number | null };
    return row.due ?? undefined;
  }

  /**
   * Commits a job's outcome: the job goes, its retry, events and suppressions come, all in
   * one transaction. Outcomes that finish together share one commit (one fsync), as
   * submissions do; the promise resolves once the commit is on disk.
   */
  commit(job: QueuedJob, outcome: DurableOutcome): Promise<void> {
    return this.#outcomes.add({ job, outcome });
  }

  #storeOutcomes(batch: { job: QueuedJob; outcome: DurableOutcome }[]): void {
    const remove = this.#db.prepare('DELETE FROM jobs WHERE id = ?');
    const removeMessage = this.#db.prepare('DELETE FROM messages WHERE id = ?');
    const newMessage = this.#db.prepare('INSERT INTO messages (value) VALUES (?)');
    const freedFiles: string[] = [];
    const retry = this.#db.prepare('INSERT INTO jobs (message_id, key, headers, not_before) VALUES (?, ?, ?, ?)');
    const event = this.#db.prepare('INSERT INTO events_outbox (json) VALUES (?)');
    const suppress = this.#suppressStatement();
    this.#transaction(() => {
      for (const { job, outcome } of batch) {
        // A job finished twice (it cannot be, but if it were) must not double its outcome.
        if (remove.run(job.id).changes === 0) continue;
        const again = outcome.retry?.record;
        // A retry of the same bytes keeps the body's row; anything else frees it.
        const sameBody = again?.value === job.record.value;
        if (!sameBody) {
          removeMessage.run(job.messageId);
          if (job.bodyFile) freedFiles.push(job.bodyFile);
        }
        if (again) retry.run(sameBody ? job.messageId : newMessage.run(again.value).lastInsertRowid, again.key, JSON.stringify(again.headers), outcome.retry!.notBefore);
        for (const e of outcome.events) event.run(JSON.stringify(e));
        for (const x of outcome.suppressions) suppress.run(x.namespace, x.address, x.type ?? '', JSON.stringify(x));
      }
    });
    this.#files.remove(freedFiles);
  }

  #suppressStatement() {
    return this.#db.prepare('INSERT OR REPLACE INTO suppressions (namespace, address, type, entry) VALUES (?, ?, ?, ?)');
  }

  /**
   * Events that belong to no job (opens, clicks, bounces and complaints that came back later),
   * with the suppressions they cause: committed together, then the events are written to the
   * event log with the others.
   */
  recordEvents(events: object[], suppressions: SuppressionEntry[] = []): void {
    const insert = this.#db.prepare('INSERT INTO events_outbox (json) VALUES (?)');
    const suppress = this.#suppressStatement();
    this.#transaction(() => {
      for (const e of events) insert.run(JSON.stringify(e));
      for (const x of suppressions) suppress.run(x.namespace, x.address, x.type ?? '', JSON.stringify(x));
    });
    this.#flushEvents();
  }

  /** Removes suppression entries (each of its own type): committed before it returns. */
  removeSuppressions(entries: SuppressionEntry[]): void {
    const remove = this.#db.prepare('DELETE FROM suppressions WHERE namespace = ? AND address = ? AND type = ?');
    this.#transaction(() => {
      for (const x of entries) remove.run(x.namespace, x.address, x.type ?? '');
    });
  }

  /**
   * Moves committed events to the JSON-lines event log. They stay in the outbox until appended,
   * so none is lost in a crash or on a full disk; a failed append is cut back to where it
   * started, so a retry writes no torn or doubled line.
   */
  #flushEvents(): void {
    let size = 0;
    let logged: string[] = [];
    try {
      const rows = this.#db.prepare('SELECT id, json FROM events_outbox ORDER BY id').all() as { id: number; json: string }[];
      if (!rows.length) return;
      size = existsSync(this.#eventsLog) ? statSync(this.#eventsLog).size : 0;
      appendFileSync(this.#eventsLog, rows.map((r) => `${r.json}\n`).join(''));
      this.#db.prepare('DELETE FROM events_outbox WHERE id <= ?').run(rows.at(-1)!.id);
      logged = rows.map((r) => r.json);
    } catch (error) {
      try { if (existsSync(this.#eventsLog)) truncateSync(this.#eventsLog, size); } catch { /* the next flush tries again */ }
      this.#onEventLogError(error as Error);
    }
    if (logged.length) this.#onEventsLogged(logged);
  }

  locate(job: QueuedJob): Record<string, unknown> {
    return { job: job.id };
  }

  /** A job that cannot be delivered at all (unreadable, or a failure of our own) is set aside, not retried forever. */
  async deadLetter(job: QueuedJob, reason: string): Promise<void> {
    this.#setAside(job, reason);
  }

  /** Moves a job, its bytes included, to dead_letters. */
  #setAside(job: QueuedJob, reason: string): void {
    const { record } = job;
    this.#transaction(() => {
      this.#db.prepare('INSERT INTO dead_letters (id, key, value, headers, reason, at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(job.id, record.key, record.value, JSON.stringify(record.headers), reason, Date.now());
      this.#db.prepare('DELETE FROM jobs WHERE id = ?').run(job.id);
      this.#db.prepare('DELETE FROM messages WHERE id = ?').run(job.messageId);
    });
    if (job.bodyFile) this.#files.remove([job.bodyFile]);
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
    this.#submissions.flush();
    this.#outcomes.flush();
    this.#closed = true;
    this.#db.close();
    this.#files.close();
  }
}
