// The embedded queue's storage: the scheduler's queries read the jobs index only (their query
// plans say so), bodies are stored once and kept across retries, large bodies are files written
// before their row and removed after it, and a folder of the first layout (bodies inside the
// jobs rows) is moved to the current one without losing a message.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { CLAIM, NEXT_DUE, SqliteQueue } from '../../standalone/sqlite-queue.ts';

const folder = mkdtempSync(path.join(tmpdir(), 'mtrelay-queue-'));
after(() => rmSync(folder, { recursive: true, force: true }));
let files = 0;

function openQueue(file = path.join(folder, `q${++files}`, 'queue.sqlite'), bodyFileBytes?: number): { queue: SqliteQueue; file: string; count: (table: string) => number } {
  mkdirSync(path.dirname(file), { recursive: true });
  const queue = new SqliteQueue({ file, eventsLog: `${file}.events`, onEventLogError: (error) => assert.fail(error), ...(bodyFileBytes ? { bodyFileBytes } : {}) });
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

/** A queue folder of the first layout (bodies inside the jobs rows), its database left open to fill. */
function firstLayout(name: string): { file: string; old: DatabaseSync } {
  mkdirSync(path.join(folder, name));
  const file = path.join(folder, name, 'queue.sqlite');
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
  return { file, old };
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
  const { file, old } = firstLayout('version0');
  const insert = old.prepare('INSERT INTO jobs (key, value, headers, not_before, leased_until) VALUES (?, ?, ?, ?, ?)');
  insert.run('due', body(7), '{"mtrelay-namespace":"shop"}', 0, Number.MAX_SAFE_INTEGER); // leased by a killed process
  insert.run('later', body(8), '{"mtrelay-namespace":"shop"}', 4_000_000_000_000, 0);
  const bounced = { namespace: 'shop', address: 'gone@recipient.test', reason: '550 5.1.1 no such user', bounce_class: 10, source: 'bounce', created: '2026-11-01T00:00:00.000Z' } as const;
  old.prepare('INSERT INTO suppressions (namespace, address, entry) VALUES (?, ?, ?)').run('shop', bounced.address, JSON.stringify(bounced));
  old.close();

  const { queue, count } = openQueue(file);
  const [due] = queue.claim(10);
  assert.equal(due!.record.key, 'due');
  assert.ok(due!.record.value.equals(body(7)));
  assert.equal(queue.nextDue(), 4_000_000_000_000);
  await queue.send(record('new', 9));
  assert.equal(count('messages'), 3);
  // A suppression of the old layout holds back all mail; a complaint's entry for the same address sits beside it.
  assert.deepEqual(queue.suppressions(), [bounced]);
  const complained = { ...bounced, reason: 'spam complaint (abuse)', source: 'complaint', type: 'non_transactional' } as const;
  queue.recordEvents([], [complained]);
  assert.deepEqual(queue.suppressions(), [bounced, complained]);
  await queue.close();
  const db = new DatabaseSync(file, { readOnly: true });
  const columns = (db.prepare("SELECT name FROM pragma_table_info('jobs')").all() as { name: string }[]).map((c) => c.name);
  const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  const ids = (db.prepare('SELECT id FROM jobs ORDER BY id').all() as { id: number }[]).map((r) => r.id);
  db.close();
  assert.deepEqual(columns, ['id', 'message_id', 'key', 'headers', 'not_before', 'leased_until']);
  assert.equal(version, 3);
  assert.deepEqual(ids, [1, 2, 3], 'ids go on from the old ones');
});

test('a large body is a file: on disk before its row, read back as sent, kept by its retry, removed with its job', async () => {
  const { queue, file, count } = openQueue(undefined, 64 * 1024);
  const bodies = path.join(path.dirname(file), 'bodies');
  const big = (fill: number) => Buffer.alloc(300_000, fill);
  await Promise.all([queue.send({ ...record('big1', 1), value: big(1) }), queue.send({ ...record('big2', 2), value: big(2) }), queue.send({ ...record('small', 3), value: Buffer.alloc(1000, 3) })]);
  assert.equal(readdirSync(bodies).length, 2, 'the two large bodies are files, the small one is not');
  const db = new DatabaseSync(file, { readOnly: true });
  const stored = db.prepare('SELECT key, length(value) AS n, file FROM jobs JOIN messages ON messages.id = message_id ORDER BY key').all() as { key: string; n: number; file: string | null }[];
  db.close();
  assert.deepEqual(stored.map((r) => [r.key, r.n, r.file !== null]), [['big1', 0, true], ['big2', 0, true], ['small', 1000, false]]);

  // The small one, not waiting for a file, was committed first.
  const byKey = new Map(queue.claim(10).map((j) => [j.record.key, j]));
  const [first, second, small] = ['big1', 'big2', 'small'].map((k) => byKey.get(k));
  assert.ok(first!.record.value.equals(big(1)) && second!.record.value.equals(big(2)) && small!.record.value.equals(Buffer.alloc(1000, 3)));
  const retryAt = Date.now() + 60_000;
  await queue.commit(first!, { events: [], suppressions: [], retry: { rung: '1m', notBefore: retryAt, record: first!.record } });
  await queue.commit(second!, { events: [], suppressions: [] });
  await queue.deadLetter(small!, 'test');
  await new Promise((r) => setTimeout(r, 100)); // removals run after the commit
  assert.deepEqual(readdirSync(bodies), [first!.bodyFile], "the retry kept its body's file; the finished job's is gone");
  const [again] = queue.claim(10, retryAt);
  assert.ok(again!.record.value.equals(big(1)));
  await queue.commit(again!, { events: [], suppressions: [] });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(readdirSync(bodies), []);
  assert.equal(count('messages'), 0);
  await queue.close();
});

test('body files no row names (a crash between write and commit) are removed at start, other entries kept; a lost body file sets its job aside', async () => {
  const { queue, file } = openQueue(undefined, 64 * 1024);
  const bodies = path.join(path.dirname(file), 'bodies');
  await queue.send({ ...record('lost', 5), value: Buffer.alloc(100_000, 5) });
  await queue.close();
  const [named] = readdirSync(bodies);
  const orphan = '0b7e3a52-5c7e-4a57-9d7e-2b1f0c9a1e11.eml';
  writeFileSync(path.join(bodies, orphan), 'left by a crash');
  writeFileSync(path.join(bodies, 'notes.txt'), 'not ours');
  rmSync(path.join(bodies, named!));
  const errors: number[] = [];
  const reopened = new SqliteQueue({ file, eventsLog: `${file}.events`, onEventLogError: (error) => assert.fail(error), bodyFileBytes: 64 * 1024, onBodyError: (_e, job) => errors.push(job) });
  assert.ok(!existsSync(path.join(bodies, orphan)), 'the orphan is gone');
  assert.ok(existsSync(path.join(bodies, 'notes.txt')), 'a file not named like a body is left alone');
  assert.deepEqual(reopened.claim(10), [], 'a job without its body is never handed out');
  assert.equal(errors.length, 1);
  const db = new DatabaseSync(file, { readOnly: true });
  const reason = (db.prepare('SELECT reason FROM dead_letters').get() as { reason: string }).reason;
  db.close();
  assert.match(reason, /its body file .*\.eml is missing/);
  assert.equal(reopened.depth, 0);
  await reopened.close();
});

test('a body file that exists but cannot be read keeps its job: it waits a minute and is tried again', async () => {
  const { queue, file } = openQueue(undefined, 64 * 1024);
  const bodies = path.join(path.dirname(file), 'bodies');
  await queue.send({ ...record('unreadable', 6), value: Buffer.alloc(100_000, 6) });
  const [name] = readdirSync(bodies);
  // A directory where the file was: reading fails with EISDIR, not ENOENT.
  rmSync(path.join(bodies, name!));
  mkdirSync(path.join(bodies, name!));
  const now = Date.now();
  assert.deepEqual(queue.claim(10, now), []);
  assert.ok(queue.nextDue()! >= now + 59_000, 'due again in a minute');
  assert.equal(queue.depth, 1, 'not set aside');
  rmSync(path.join(bodies, name!), { recursive: true });
  writeFileSync(path.join(bodies, name!), Buffer.alloc(100_000, 6));
  const [job] = queue.claim(10, now + 60_000);
  assert.ok(job!.record.value.equals(Buffer.alloc(100_000, 6)));
  await queue.close();
});

test('after the move from the first layout, new job ids go on past every dead letter', async () => {
  const { file, old } = firstLayout('ids');
  // Jobs 1 to 5 came and went (5 was set aside); the queue is empty now.
  for (let i = 0; i < 5; i++) old.prepare('INSERT INTO jobs (key, value, headers) VALUES (?, ?, ?)').run(`k${i}`, Buffer.from('x'), '{}');
  old.exec("INSERT INTO dead_letters (id, key, value, headers, reason, at) VALUES (5, 'k4', x'78', '{}', 'test', 0); DELETE FROM jobs;");
  old.close();
  const { queue } = openQueue(file);
  await queue.send(record('after', 7));
  const [job] = queue.claim(10);
  assert.ok(job!.id > 5, `job id ${job!.id} does not reuse a dead letter's`);
  await queue.deadLetter(job!, 'no collision');
  await queue.close();
});
