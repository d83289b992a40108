// The work queue's guarantees, as pure logic: a key is held once, never reconciled twice at
// the same time, re-run when it changed during a reconcile, and retried with backoff.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { createOperatorMetrics } from '../../operator/metrics.ts';
import { WorkQueue, type Reconcile } from '../../operator/work-queue.ts';

const logger = pino({ level: 'silent' });

function queueWith(reconcile: Reconcile, workers = 4) {
  const metrics = createOperatorMetrics();
  return { metrics, queue: new WorkQueue({ kind: 'Test', reconcile, logger, metrics, workers }) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a key added many times while waiting is reconciled once', async () => {
  const seen: string[] = [];
  const { queue } = queueWith(async (key) => { seen.push(key); });
  for (let i = 0; i < 10; i++) queue.add('a');
  queue.add('b');
  queue.start();
  await sleep(50);
  await queue.stop();
  assert.deepEqual(seen.sort(), ['a', 'b']);
});

test('one key is never reconciled by two workers at once; a change during a reconcile runs it again', async () => {
  let running = 0;
  let most = 0;
  let runs = 0;
  const { queue } = queueWith(async () => {
    running++;
    most = Math.max(most, running);
    runs++;
    await sleep(30);
    running--;
  });
  queue.start();
  queue.add('k');
  await sleep(5);
  queue.add('k'); // while the first reconcile runs
  queue.add('k');
  await sleep(120);
  await queue.stop();
  assert.equal(most, 1);
  assert.equal(runs, 2);
});

test('failures are retried with growing delays and counted; success forgets them', async () => {
  const times: number[] = [];
  const { queue, metrics } = queueWith(async () => {
    times.push(Date.now());
    if (times.length < 5) throw new Error('not yet');
  }, 1);
  queue.start();
  queue.add('k');
  const deadline = Date.now() + 2000;
  while (times.length < 5 && Date.now() < deadline) await sleep(10);
  await queue.stop();
  assert.equal(times.length, 5);
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  // 5, 10, 20, 40 ms: growing waits (timers may fire a millisecond early by the wall clock).
  assert.ok(gaps[3]! >= 38 && gaps[3]! > gaps[0]!, `gaps ${gaps.join(', ')}`);
  const values = (await metrics.reconciles.get()).values;
  assert.equal(values.find((v) => v.labels.result === 'error')?.value, 4);
  assert.equal(values.find((v) => v.labels.result === 'success')?.value, 1);
});

test('a requeue after a delay comes back by itself', async () => {
  let runs = 0;
  const { queue } = queueWith(async () => (++runs === 1 ? { requeueAfterMs: 50 } : undefined));
  queue.start();
  queue.add('k');
  await sleep(150);
  await queue.stop();
  assert.equal(runs, 2);
});
