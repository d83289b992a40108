// Standalone's usage counts (a key's sending limits, the sandbox quota, failed AUTHs per
// address) in their own SQLite file next to the queue, so a restart resets no limit. The one
// process is the whole fleet: it writes its buckets every second and reads them back at start.
import { DatabaseSync } from 'node:sqlite';
import type { Logger } from 'pino';
import type { UsageCounters, UsageRecord } from '../shared/usage/usage-counters.ts';
import { UsageSync } from '../shared/usage/usage-sync.ts';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS usage (
    counter TEXT NOT NULL, source TEXT NOT NULL, start INTEGER NOT NULL,
    width INTEGER NOT NULL, window INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (counter, source, start)
  );`;

export interface SqliteUsageOptions {
  file: string;
  counters: UsageCounters;
  logger: Logger;
  onPublished?(records: number): void;
  onFailed?(): void;
}

/** Loads the counts still in their windows, then keeps the file current every second. */
export function startSqliteUsage(o: SqliteUsageOptions): { stop(): Promise<void> } {
  const db = new DatabaseSync(o.file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  db.exec(SCHEMA);
  const now = Date.now();
  db.prepare('DELETE FROM usage WHERE start + width + window <= ?').run(now);
  for (const row of db.prepare('SELECT counter, source, start, width, window, count FROM usage').all() as unknown as UsageRecord[]) {
    o.counters.apply(row, now);
  }
  const upsert = db.prepare(`INSERT INTO usage (counter, source, start, width, window, count) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (counter, source, start) DO UPDATE SET count = excluded.count, window = excluded.window`);
  const expire = db.prepare('DELETE FROM usage WHERE start + width + window <= ?');
  const sync = new UsageSync({
    counters: o.counters, logger: o.logger, onPublished: o.onPublished, onFailed: o.onFailed,
    publish: (records) => {
      db.exec('BEGIN');
      try {
        for (const r of records) upsert.run(r.counter, r.source, r.start, r.width, r.window, r.count);
        expire.run(Date.now());
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
  });
  sync.start();
  return {
    stop: async () => {
      await sync.stop();
      db.close();
    },
  };
}
