// The delivery core as pure logic, with a recording outcome sink and a scripted attempt: what
// reaches the sink, that nothing is counted or suppressed before the sink has made it
// durable, and that a record the core cannot process is set aside, never lost. Both runtimes
// run this same core (through Kafka and SQLite in the delivery suite).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { DeliveryCore, type DurableOutcome, type OutcomeSink } from '../../deliverer/delivery-core.ts';
import type { Deliverer, DeliveryJob, RecipientOutcome } from '../../deliverer/delivery.ts';
import { createDelivererMetrics } from '../../deliverer/metrics.ts';
import { retryPolicy } from '../../deliverer/retry-policy.ts';
import { SuppressionList } from '../../deliverer/suppression-list.ts';
import { EMPTY_ATTRIBUTES } from '../../shared/attributes/x-mt-attr.ts';
import type { QueueRecord } from '../../shared/queue.ts';
import { submissionHeaders } from '../../shared/submission-record.ts';

const record: QueueRecord = {
  key: '42',
  value: Buffer.from('From: shop@example.com\r\nTo: a@x.test\r\nSubject: Hi\r\nMessage-ID: <m1@example.com>\r\n\r\nbody\r\n'),
  headers: submissionHeaders({
    transmissionId: '42', namespace: 'acme', apiKeyId: 'acme/app', mailFrom: 'shop@example.com', rcptTo: ['gone@x.test', 'later@x.test', 'fine@x.test'],
    sendingDomain: 'example.com', attributes: EMPTY_ATTRIBUTES, receivedAt: new Date().toISOString(), clientAddress: '192.0.2.1', tls: 'TLSv1.3',
  }) as Record<string, string>,
};

const OUTCOMES: RecipientOutcome[] = [
  { rcptTo: 'gone@x.test', rcptType: 'to', kind: 'bounced', reply: '550 5.1.1 No such user', bounceClass: 10 },
  { rcptTo: 'later@x.test', rcptType: 'to', kind: 'deferred', reply: '451 4.2.0 Busy', bounceClass: 20 },
  { rcptTo: 'fine@x.test', rcptType: 'to', kind: 'delivered', reply: '250 2.0.0 OK', remote: 'mx[127.0.0.2]:25', tls: true },
];

class RecordingSink implements OutcomeSink<{ record: QueueRecord }> {
  committed: DurableOutcome[] = [];
  deadLetters: string[] = [];
  gate: Promise<void> = Promise.resolve();
  async commit(_job: { record: QueueRecord }, outcome: DurableOutcome): Promise<void> {
    await this.gate;
    this.committed.push(outcome);
  }
  async deadLetter(_job: { record: QueueRecord }, reason: string): Promise<void> {
    this.deadLetters.push(reason);
  }
  locate(): Record<string, unknown> {
    return { row: 1 };
  }
}

function core(attempt: (job: DeliveryJob) => Promise<RecipientOutcome[]>) {
  const sink = new RecordingSink();
  const suppressions = new SuppressionList();
  const metrics = createDelivererMetrics(new Registry());
  const attempts: DeliveryJob[] = [];
  const deliverer = { attempt: (job: DeliveryJob) => { attempts.push(job); return attempt(job); } } as unknown as Deliverer;
  const c = new DeliveryCore({ deliverer, policy: retryPolicy(['1m', '5m'], '72h'), suppressions, metrics, logger: pino({ level: 'silent' }), sink });
  return { core: c, sink, suppressions, metrics, attempts };
}

const count = async (metrics: ReturnType<typeof createDelivererMetrics>, type: string) =>
  (await metrics.outcomes.get()).values.filter((v) => v.labels.type === type).reduce((n, v) => n + v.value, 0);

test('the outcome reaches the sink whole; suppressions and counts follow only once it is durable', async () => {
  const { core: c, sink, suppressions, metrics } = core(async () => OUTCOMES);
  let open = () => {};
  sink.gate = new Promise((resolve) => (open = resolve));
  const running = c.run({ record });
  await new Promise((r) => setImmediate(r));
  assert.equal(c.inFlight, 1, 'in flight until durable');
  assert.equal(suppressions.has('acme', 'gone@x.test'), false, 'not suppressed before the sink committed');
  assert.equal(await count(metrics, 'bounce'), 0, 'not counted before the sink committed');
  open();
  await running;
  assert.equal(c.inFlight, 0);
  const [outcome] = sink.committed;
  assert.ok(outcome);
  assert.deepEqual(outcome.events.map((e) => `${e.type} ${e.rcpt_to}`).sort(), [
    'bounce gone@x.test', 'delay later@x.test', 'delivery fine@x.test',
    'injection fine@x.test', 'injection gone@x.test', 'injection later@x.test',
  ]);
  assert.deepEqual(outcome.suppressions.map((s) => s.address), ['gone@x.test']);
  assert.equal(outcome.retry?.rung, '1m');
  assert.equal(outcome.retry?.record.key, '42');
  assert.equal(outcome.retry?.record.value, record.value);
  assert.equal(outcome.retry?.record.headers['mtrelay-attempts'], '1');
  assert.equal(outcome.retry?.record.headers['mtrelay-only'], '["later@x.test"]');
  assert.equal(outcome.retry?.record.headers['mtrelay-transmission-id'], '42', 'the retry carries the submission headers');
  assert.ok(suppressions.has('acme', 'gone@x.test'));
  assert.equal(await count(metrics, 'bounce'), 1);
});

test('a retry record is attempted for its recipients only, as its next attempt', async () => {
  const { core: c, attempts } = core(async () => []);
  await c.run({ record: { ...record, headers: { ...record.headers, 'mtrelay-attempts': '2', 'mtrelay-only': '["later@x.test"]', 'mtrelay-not-before': '0' } } });
  assert.deepEqual(attempts.map((a) => [a.attempt, a.only]), [[2, ['later@x.test']]]);
});

test('a record this version cannot read is set aside with the reason, never attempted', async () => {
  const { core: c, sink, attempts, metrics } = core(async () => OUTCOMES);
  const { 'mtrelay-schema': _schema, ...headers } = record.headers;
  await c.run({ record: { ...record, headers } });
  assert.deepEqual(sink.deadLetters, ['submission record lacks header mtrelay-schema']);
  assert.equal(attempts.length, 0);
  assert.equal(sink.committed.length, 0);
  assert.equal((await metrics.deadLetters.get()).values[0]?.value, 1);
});

test('a fault during the attempt is set aside as a dead letter, not lost and not retried blindly', async () => {
  const { core: c, sink } = core(async () => { throw new TypeError('boom'); });
  await c.run({ record });
  assert.deepEqual(sink.deadLetters, ['delivery attempt failed: boom']);
  assert.equal(c.inFlight, 0);
});
