// The pure parts of at-least-once delivery: the offset watermark and the retry ladder.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OffsetTracker } from '../../shared/kafka/offset-tracker.ts';
import { nextStep, retryPolicy } from '../../deliverer/retry-policy.ts';
import { parseDuration } from '../../shared/duration.ts';

test('a commit never passes a record still in flight', () => {
  const t = new OffsetTracker();
  for (const o of ['10', '11', '12', '13']) t.start('s', 0, o);
  t.finish('s', 0, '11');
  t.finish('s', 0, '13');
  assert.deepEqual(t.committable(), [{ topic: 's', partition: 0, offset: '10' }]);
  t.markCommitted(t.committable());
  t.finish('s', 0, '10');
  const next = t.committable();
  assert.deepEqual(next, [{ topic: 's', partition: 0, offset: '12' }]);
  assert.deepEqual(t.committable(), next, 'offered again until the broker accepted it');
  t.markCommitted(next);
  assert.deepEqual(t.committable(), [], 'nothing new to commit');
  t.finish('s', 0, '12');
  assert.deepEqual(t.committable(), [{ topic: 's', partition: 0, offset: '14' }]);
  assert.equal(t.inFlight, 0);
  assert.ok(t.isStarted('s', 0, '13') && !t.isStarted('s', 0, '14'), 'records fetched again after a rebalance are recognized');
});

test('partitions are tracked apart', () => {
  const t = new OffsetTracker();
  t.start('s', 0, '5');
  t.start('s', 1, '7');
  t.finish('s', 1, '7');
  assert.deepEqual(t.committable(), [{ topic: 's', partition: 1, offset: '8' }]);
  assert.equal(t.inFlight, 1);
});

test('the retry ladder climbs, repeats its last rung, and expires', () => {
  const policy = retryPolicy(['1m', '5m', '1h'], '3h');
  const t0 = 0;
  assert.deepEqual(nextStep(policy, 1, t0, t0), { kind: 'retry', rung: '1m', notBefore: 60_000 });
  assert.deepEqual(nextStep(policy, 2, t0, 60_000), { kind: 'retry', rung: '5m', notBefore: 360_000 });
  assert.deepEqual(nextStep(policy, 5, t0, 3_600_000), { kind: 'retry', rung: '1h', notBefore: 7_200_000 });
  assert.deepEqual(nextStep(policy, 6, t0, 7_300_000), { kind: 'expire' });
  assert.equal(parseDuration('250ms'), 250);
  assert.throws(() => parseDuration('soon'), /invalid duration/);
});
