// The embedded queue's storage: the scheduler's queries read the jobs index only (their query
// plans say so), bodies are stored once and kept across retries, and a folder of the previous
// layout (bodies inside the jobs rows) is moved to the current one without losing a message.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { CLAIM, NEXT_DUE, SqliteQueue } from '../../standalone/sqlite-queue.ts';

const folder = mkdtempSync(path.join(tmpdir(), 'mtrelay-queue-'));
after(() => rmSync(folder, { recursive: true, force: true }));
let files = 0;

function openQueue(file = path.join(folder, `q${++files}.sqlite`)): { queue: SqliteQueue; file: string; count: (table: string) => number } {
  const queue = new SqliteQueue({ file, eventsLog: `${file}.events`, onEventLogError: (error) => assert.fail(error) });
  const count = (table: string) => {
    const reader = new DatabaseSync(file, { readOnly: true });
    try {
      return (reader.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    } finally {
      reader.close();
    }
  };
  return { queue, file, count };
}

const body = (fill: number) => Buffer.alloc(102_400, fill);
const record = (key: string, fill: number) => ({ key, value: body(fill), headers: { 'mtrelay-namespace': 'shop' } });

test("claim and nextDue read only the jobs_due index: no table scan, no sort, no body", async () => {
  const { queue, file } = openQueue();
  const db = new DatabaseSync(file, { readOnly: true });
  const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(0, 0, 0) as { detail: string }[]).map((r) => r.detail).join(' | ');
  const claimPlan = plan(CLAIM);
  const nextDuePlan = db.prepare(`EXPLAIN QUERY PLAN ${NEXT_DUE}`).all().map((r) => (r as { detail: string }).detail).join(' | ');
  db.close();
  await queue.close();
  assert.match(claimPlan, /SEARCH jobs USING COVERING INDEX jobs_due \(leased_until=\? AND not_before<\?\)/, claimPlan);
  assert.match(nextDuePlan, /SEARCH jobs USING COVERING INDEX jobs_due \(leased_until=\?\)/, nextDuePlan);
  for (const detail of [claimPlan, nextDuePlan]) {
    assert.doesNotMatch(detail, /SCAN jobs(?! USING)|TEMP B-TREE|messages/, detail);
  }
});

test('a body is stored once, kept by its retry, and freed when its job is finished or set aside', async () => {
  const { queue, count } = openQueue();
  await Promise.all([queue.send(record('t1', 1)), queue.send(record('t2', 2)), queue.send(record('t3', 3))]);
  assert.equal(count('messages'), 3);
  const [first, second, third] = queue.claim(10);
  assert.deepEqual([first, second, third].map((j) => j!.record.value[0]), [1, 2, 3]);
  assert.ok(first!.record.value.equals(body(1)));
  assert.equal(queue.nextDue(), undefined, 'nothing due while all are leased');

  const retryAt = Date.now() + 60_000;
  await queue.commit(first!, { events: [], suppressions: [], retry: { rung: '1m', notBefore: retryAt, record: { ...first!.record, headers: { ...first!.record.headers, 'mtrelay-attempts': '1' } } } });
  await queue.commit(second!, { events: [], suppressions: [] });
  await queue.deadLetter(third!, 'unreadable');
  assert.equal(count('messages'), 1, "the retry kept its body's row; the others freed theirs");
  assert.equal(count('dead_letters'), 1);
  assert.equal(queue.nextDue(), retryAt);
  assert.deepEqual(queue.claim(10, retryAt - 1), [], 'not due yet');
  const [again] = queue.claim(10, retryAt);
  assert.ok(again!.record.value.equals(body(1)), 'the retry has the same bytes');
  assert.equal(again!.record.headers['mtrelay-attempts'], '1');
  await queue.commit(again!, { events: [], suppressions: [] });
  assert.equal(count('messages'), 0);
  assert.equal(queue.depth, 0);
  await queue.close();
});

test('a queue folder of the previous layout is moved to the current one, every job and lease kept', async () => {
  const file = path.join(folder, 'version0.sqlite');
  const old = new DatabaseSync(file);
  old.exec(`
    PRAGMA journal_mode = WAL;
    CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL,
      not_before INTEGER NOT NULL DEFAULT 0, leased_until INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX jobs_due ON jobs (not_before, id);
    CREATE TABLE events_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL);
    CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, key TEXT, value BLOB, headers TEXT, reason TEXT, at INTEGER);
    CREATE TABLE suppressions (namespace TEXT NOT NULL, address TEXT NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (namespace, address));
  `);
  const insert = old.prepare('INSERT INTO jobs (key, value, headers, not_before, leased_until) VALUES (?, ?, ?, ?, ?)');
  insert.run('due', body(7), '{"mtrelay-namespace":"shop"}', 0, Number.MAX_SAFE_INTEGER); // leased by a killed process
  insert.run('later', body(8), '{"mtrelay-namespace":"shop"}', 4_000_000_000_000, 0);
  old.close();

  const { queue, count } = openQueue(file);
  const [due] = queue.claim(10);
  assert.equal(due!.record.key, 'due');
  assert.ok(due!.record.value.equals(body(7)));
  assert.equal(queue.nextDue(), 4_000_000_000_000);
  await queue.send(record('new', 9));
  assert.equal(count('messages'), 3);
  await queue.close();
  const db = new DatabaseSync(file, { readOnly: true });
  const columns = (db.prepare("SELECT name FROM pragma_table_info('jobs')").all() as { name: string }[]).map((c) => c.name);
  const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  const ids = (db.prepare('SELECT id FROM jobs ORDER BY id').all() as { id: number }[]).map((r) => r.id);
  db.close();
  assert.deepEqual(columns, ['id', 'message_id', 'key', 'headers', 'not_before', 'leased_until']);
  assert.equal(version, 1);
  assert.deepEqual(ids, [1, 2, 3], 'ids go on from the old ones');
});
