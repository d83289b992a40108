// The counting under the fleet's limits, as pure logic: windows and buckets, room taken for
// several limits at once, other relays' counts, and what is published.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DAILY, HOURLY, SendLimits, keyHourCounter } from '../../relay/send-limits.ts';
import { UsageCounters, type LimitCheck } from '../../shared/usage/usage-counters.ts';

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const MINUTE = 60_000;
const hourly = (limit: number): LimitCheck => ({ counter: 'key-hour:acme/app', limit, ...HOURLY });

test('an event counts for the whole window and at most one bucket more', () => {
  const counters = new UsageCounters();
  counters.add('key-hour:acme/app', 3, HOURLY, T0 + 30_000);
  assert.equal(counters.count('key-hour:acme/app', HOURLY.window, T0 + 30_000), 3);
  assert.equal(counters.count('key-hour:acme/app', HOURLY.window, T0 + 60 * MINUTE + 59_999), 3, 'its minute bucket is still partly in the hour');
  assert.equal(counters.count('key-hour:acme/app', HOURLY.window, T0 + 61 * MINUTE), 0);
  assert.equal(counters.retryAfterMs('key-hour:acme/app', HOURLY.window, 3, T0 + 30_000), 61 * MINUTE - 30_000);
  assert.equal(counters.retryAfterMs('key-hour:acme/app', HOURLY.window, 4, T0 + 30_000), 0, 'under the limit: no wait');
});

test('room is taken under every limit or none, and given back when the message is not stored', () => {
  const counters = new UsageCounters();
  const daily: LimitCheck = { counter: 'key-day:acme/app', limit: 4, ...DAILY };
  const first = counters.take([hourly(10), daily], 3, T0);
  assert.ok(first.ok);
  const second = counters.take([hourly(10), daily], 2, T0);
  assert.ok(!second.ok, 'reserved room counts before its commit');
  assert.equal(second.refused, daily);
  assert.equal(counters.count('key-hour:acme/app', HOURLY.window, T0), 3, 'a refusal takes nothing from the other limit');
  first.reservation.release();
  assert.equal(counters.count('key-day:acme/app', DAILY.window, T0), 0);
  const third = counters.take([hourly(10), daily], 4, T0);
  assert.ok(third.ok);
  third.reservation.commit(T0);
  third.reservation.commit(T0); // once only
  assert.equal(counters.count('key-hour:acme/app', HOURLY.window, T0 + MINUTE), 4);
  assert.deepEqual(counters.takeChanges().map((r) => [r.counter, r.count]).sort(), [['key-day:acme/app', 4], ['key-hour:acme/app', 4]]);
  assert.deepEqual(counters.takeChanges(), [], 'published once');
});

test("other relays' buckets add up; a newer count of theirs replaces the older; our own echo is ignored", () => {
  const a = new UsageCounters({ source: 'relay-a' });
  const b = new UsageCounters({ source: 'relay-b' });
  a.add('key-hour:acme/app', 2, HOURLY, T0);
  b.add('key-hour:acme/app', 1, HOURLY, T0);
  for (const record of a.takeChanges()) b.apply(record, T0);
  assert.equal(b.count('key-hour:acme/app', HOURLY.window, T0), 3);
  a.add('key-hour:acme/app', 1, HOURLY, T0 + 10);
  const [latest] = a.takeChanges();
  assert.equal(latest!.count, 3, 'a record carries the bucket\'s whole count');
  b.apply(latest!, T0 + 10);
  b.apply(latest!, T0 + 10); // delivered twice: still counted once
  assert.equal(b.count('key-hour:acme/app', HOURLY.window, T0 + 10), 4);
  for (const record of b.takeChanges()) b.apply(record, T0);
  assert.equal(b.count('key-hour:acme/app', HOURLY.window, T0 + 10), 4);
  const stale = { ...latest!, source: 'relay-c', start: T0 - 2 * 60 * MINUTE };
  b.apply(stale, T0 + 10);
  assert.equal(b.count('key-hour:acme/app', HOURLY.window, T0 + 10), 4, 'a bucket out of its window is dropped');
});

test('unpublished changes are published with the next ones; pruning forgets what left every window', () => {
  const counters = new UsageCounters();
  counters.add('auth-fail:192.0.2.1', 1, { window: MINUTE, bucket: 1000 }, T0);
  const records = counters.takeChanges();
  counters.putBack(records);
  assert.equal(counters.takeChanges().length, 1);
  counters.prune(T0 + MINUTE + 1000);
  assert.equal(counters.size, 0);
});

test('a flood of one kind of counter never pushes out another kind', () => {
  const counters = new UsageCounters({ maxCountersPerKind: 100 });
  counters.add('key-hour:acme/app', 5, HOURLY, T0);
  for (let i = 0; i < 1000; i++) counters.add(`auth-fail:198.51.100.${i}`, 1, { window: MINUTE, bucket: 1000 }, T0);
  assert.equal(counters.size, 101);
  assert.equal(counters.count('key-hour:acme/app', HOURLY.window, T0), 5);
  assert.equal(counters.count('auth-fail:198.51.100.999', MINUTE, T0), 1, 'the newest addresses are kept');
});

test('SendLimits: early refusals at MAIL and RCPT, the final one after DATA, the sandbox quota per recipient', () => {
  const counters = new UsageCounters();
  const limits = new SendLimits(counters, 3);
  const key = { id: 'acme/app', limits: { messagesPerHour: 5, recipientsPerMessage: 3 } };
  assert.equal(limits.beforeRecipient(key, 3)?.reply.line, '452 4.5.3 Too many recipients: API key acme/app allows 3 per message; send the others in another transaction');
  assert.throws(() => limits.take(key, 'acme', 4, false), (e: { reply: { line: string } }) => e.reply.line === '550 5.5.3 Message has 4 recipients with X-MT-ATTR cc, bcc and archive; API key acme/app allows 3 per message');
  limits.take(key, 'acme', 3, false, T0).commit(T0);
  assert.equal(limits.beforeRecipient(key, 1, T0)?.limit, undefined, 'a second recipient still fits');
  const refusal = limits.beforeRecipient(key, 2, T0 + 1000);
  assert.match(refusal?.reply.line ?? '', /^451 4\.7\.1 Sending limit of API key acme\/app reached: 5 messages per hour; room for 1 more in \d+ seconds$/);
  assert.equal(counters.count(keyHourCounter('acme/app'), HOURLY.window, T0), 3);
  limits.take(key, 'acme', 2, false, T0).commit(T0);
  assert.equal(limits.beforeMail(key, T0)?.limit, 'messages_per_hour');
  assert.throws(() => limits.take({ id: 'acme/small', limits: { messagesPerDay: 2 } }, 'acme', 3, false, T0),
    (e: { reply: { line: string } }) => e.reply.line === '550 5.7.1 Message has 3 recipients, more than API key acme/small may send per 24 hours (2)');
  const other = { id: 'acme/other' };
  limits.take(other, 'acme', 3, true, T0).commit(T0);
  assert.throws(() => limits.take(other, 'acme', 1, true, T0), (e: { limit: string; reply: { line: string } }) =>
    e.limit === 'sandbox' && e.reply.line === '550 5.7.1 Sandbox domain limit of 3 messages per 24 hours reached for account acme; create a SendingDomain to send more');
  limits.take(other, 'acme', 1, false, T0).commit(T0); // own domains are not the sandbox's
});
