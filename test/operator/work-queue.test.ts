// The work queue's guarantees, as pure logic: a key is held once, never reconciled twice at
// the same time, re-run when it changed during a reconcile, and retried with backoff. Time
// is mocked where it is the subject; elsewhere reconciles are gated, so nothing waits on a clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createOperatorMetrics } from '../../operator/metrics.ts';
import { WorkQueue, type Reconcile } from '../../operator/work-queue.ts';

const logger = pino({ level: 'silent' });

function queueWith(reconcile: Reconcile, workers = 4) {
  const metrics = createOperatorMetrics(new Registry());
  return { metrics, queue: new WorkQueue({ kind: 'Test', reconcile, logger, metrics, workers }) };
}

/** Lets every pending promise continuation run (setImmediate is never mocked here). */
const settle = async (turns = 5) => {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
};

/** A promise to resolve from outside: a reconcile waits on it while the test acts. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('a key added many times while waiting is reconciled once', async () => {
  const seen: string[] = [];
  const { queue } = queueWith(async (key) => { seen.push(key); });
  for (let i = 0; i < 10; i++) queue.add('a');
  queue.add('b');
  assert.equal(queue.depth, 2, 'the queue holds each key once');
  queue.start();
  await settle();
  await queue.stop();
  assert.deepEqual(seen.sort(), ['a', 'b']);
  assert.equal(queue.depth, 0);
});

test('one key is never reconciled by two workers at once; a change during a reconcile runs it again', async () => {
  let running = 0;
  let most = 0;
  let runs = 0;
  const first = gate();
  const { queue } = queueWith(async () => {
    running++;
    most = Math.max(most, running);
    runs++;
    if (runs === 1) await first.promise;
    running--;
  });
  queue.start();
  queue.add('k');
  await settle();
  assert.equal(runs, 1, 'the first reconcile is running');
  queue.add('k'); // while the first reconcile runs: held, not started by an idle worker
  queue.add('k');
  await settle();
  assert.equal(runs, 1, 'no second reconcile while the first runs, though three workers are idle');
  first.open();
  await settle();
  await queue.stop();
  assert.equal(most, 1);
  assert.equal(runs, 2, 'the change made during the reconcile runs it once more');
});

test('failures are retried after 5, 10, 20 and 40 ms and counted; success forgets them', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const times: number[] = [];
  const { queue, metrics } = queueWith(async () => {
    times.push(Date.now());
    if (times.length < 5) throw new Error('not yet');
  }, 1);
  queue.start();
  queue.add('k');
  await settle();
  for (const delay of [5, 10, 20, 40]) {
    const before = times.length;
    t.mock.timers.tick(delay - 1);
    await settle();
    assert.equal(times.length, before, `no retry before ${delay} ms`);
    t.mock.timers.tick(1);
    await settle();
    assert.equal(times.length, before + 1, `a retry at ${delay} ms`);
  }
  await queue.stop();
  assert.deepEqual(times.slice(1).map((at, i) => at - times[i]!), [5, 10, 20, 40]);
  const values = (await metrics.reconciles.get()).values;
  assert.equal(values.find((v) => v.labels.result === 'error')?.value, 4);
  assert.equal(values.find((v) => v.labels.result === 'success')?.value, 1);
});

test('a requeue after a delay comes back by itself, not before', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  let runs = 0;
  const { queue } = queueWith(async () => (++runs === 1 ? { requeueAfterMs: 50 } : undefined));
  queue.start();
  queue.add('k');
  await settle();
  t.mock.timers.tick(49);
  await settle();
  assert.equal(runs, 1);
  t.mock.timers.tick(1);
  await settle();
  await queue.stop();
  assert.equal(runs, 2);
});
