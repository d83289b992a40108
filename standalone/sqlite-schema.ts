// The embedded queue's tables, by version (PRAGMA user_version). Version 1 moved message bodies
// out of `jobs` into `messages`: with a 100 KB body in the row, every scheduler query that
// looked at a job's lease walked that body's overflow pages. Version 2 lets a body live in a
// file the row names (`messages.file`, body-files.ts). Version 3 keys a suppression by its
// type too, so a complaint's entry (non-transactional mail only) sits beside a hard bounce's
// rather than replacing it. An older folder is brought to the current version in one
// transaction when it is opened; nothing in it is lost or sent twice.
import type { DatabaseSync } from 'node:sqlite';

const VERSION = 3;

const jobsTable = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    headers TEXT NOT NULL,
    not_before INTEGER NOT NULL DEFAULT 0,
    leased_until INTEGER NOT NULL DEFAULT 0
  );`;

/** type: '' for all mail, 'non_transactional' for mail not marked transactional. */
const suppressionsTable = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
    namespace TEXT NOT NULL, address TEXT NOT NULL, type TEXT NOT NULL DEFAULT '', entry TEXT NOT NULL, PRIMARY KEY (namespace, address, type)
  );`;

const TABLES = `
  -- The body in value, or (value empty) in the file named by file.
  CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, value BLOB NOT NULL, file TEXT);
  ${jobsTable('jobs')}
  -- What claim and nextDue read, and all they read.
  CREATE INDEX IF NOT EXISTS jobs_due ON jobs (leased_until, not_before, id);
  CREATE TABLE IF NOT EXISTS events_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, key TEXT, value BLOB, headers TEXT, reason TEXT, at INTEGER);
  ${suppressionsTable('suppressions')}
`;

/** Version 0: bodies in the jobs rows. Each job's body gets the job's id as its own. */
const FROM_VERSION_0 = `
  CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, value BLOB NOT NULL);
  INSERT INTO messages (id, value) SELECT id, value FROM jobs;
  ${jobsTable('jobs_v1')}
  INSERT INTO jobs_v1 (id, message_id, key, headers, not_before, leased_until) SELECT id, id, key, headers, not_before, leased_until FROM jobs;
  DROP TABLE jobs;
  ALTER TABLE jobs_v1 RENAME TO jobs;
`;

function columns(db: DatabaseSync, table: string): string[] {
  return (db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[]).map((c) => c.name);
}

/** Brings the database to the current version (a new one is created at it). */
export function migrate(db: DatabaseSync): void {
  const { user_version: version } = db.prepare('PRAGMA user_version').get() as { user_version: number };
  if (version > VERSION) throw new Error(`the queue database is of version ${version}, newer than this mtrelay's ${VERSION}: run the newer mtrelay`);
  if (version === VERSION) return;
  db.exec('BEGIN IMMEDIATE');
  try {
    if (columns(db, 'jobs').includes('value')) {
      // Rebuilding the table would restart its ids, and a job id is also a dead letter's: the counter goes on.
      const counter = (db.prepare("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0) AS seq, COALESCE((SELECT MAX(id) FROM dead_letters), 0) AS dead").get() as { seq: number; dead: number });
      db.exec(FROM_VERSION_0);
      db.prepare("DELETE FROM sqlite_sequence WHERE name = 'jobs'").run();
      db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('jobs', MAX(?, ?, COALESCE((SELECT MAX(id) FROM jobs), 0)))").run(counter.seq, counter.dead);
    }
    if (columns(db, 'suppressions').length && !columns(db, 'suppressions').includes('type')) {
      // Every entry before version 3 held back all mail.
      db.exec(`${suppressionsTable('suppressions_v3')}
        INSERT INTO suppressions_v3 (namespace, address, type, entry) SELECT namespace, address, '', entry FROM suppressions;
        DROP TABLE suppressions; ALTER TABLE suppressions_v3 RENAME TO suppressions;`);
    }
    db.exec(TABLES);
    if (!columns(db, 'messages').includes('file')) db.exec('ALTER TABLE messages ADD COLUMN file TEXT');
    db.exec(`PRAGMA user_version = ${VERSION}`);
    db.exec('COMMIT');
  } catch (error) {
    db.exec('ROLLBACK');
    throw error;
  }
}
