// `mtrelay dispatcher` as a process against the real broker: events produced to mtrelay.events
// reach the account's webhook as signed SparkPost batches; while the receiver fails nothing is
// committed past its events, so a dispatcher stopped meanwhile leaves them for the next one,
// which posts them once the receiver is back. SIGTERM drains.
// @needs kafka processes
// @limit 90s
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Producer } from 'kafkajs';
import pino from 'pino';
import { verifySignature } from '../../dispatcher/signature.ts';
import { createKafka } from '../../shared/kafka/client.ts';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader, uncommitted } from '../helpers/kafka-reader.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { tempDir } from '../helpers/resources.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';

const prefix = `dsp${Date.now()}`;
const group = `g-${prefix}`;
const receiver = new WebhookReceiver();
const resources = tempDir('dispatcher-resources');
let reader: KafkaReader;
let producer: Producer;
let dispatcher: MtrelayProcess | undefined;

async function startDispatcher(): Promise<MtrelayProcess> {
  const process = new MtrelayProcess(['dispatcher', '--webhook-allow-private', '--resources', resources, '--kafka', testKafka(), '--topic-prefix', prefix, '--group-id', group,
    '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--batch-linger', '200ms', '--webhook-retry-first', '200ms', '--webhook-retry-max', '1s']);
  const ready = await process.started('dispatcher running');
  process.metricsPort = ready.metricsPort as number;
  await process.waitUntilReady();
  return process;
}

/** Events of one transmission, in one partition, so Kafka keeps their order (as it does for each transmission's events). */
function produce(namespace: string, count: number, partition = 0): Promise<string[]> {
  const transmission = randomUUID();
  const events = Array.from({ length: count }, (_, i) => ({
    type: 'delivery', event_id: randomUUID(), timestamp: new Date().toISOString(), namespace, transmission_id: transmission, rcpt_to: `r${i}@x.test`, tags: [],
  }));
  return producer.send({ topic: `${prefix}.events`, messages: events.map((e) => ({ key: e.transmission_id, value: JSON.stringify(e), partition })) })
    .then(() => events.map((e) => e.event_id));
}

before(async () => {
  await receiver.listen();
  writeFileSync(path.join(resources, 'webhook.yaml'), [
    'apiVersion: mtrelay.dev/v1alpha1', 'kind: Webhook', 'metadata: {name: events, namespace: acme}',
    `spec: {url: "${receiver.url('/events')}", allowInsecureUrl: true, signing: {secretRef: {name: events-signing}}}`, '---',
    'apiVersion: v1', 'kind: Secret', 'metadata: {name: events-signing, namespace: acme}', 'stringData: {secret: whsec-kafka}', '',
  ].join('\n'));
  reader = await KafkaReader.start(testKafka(), `${prefix}.events`); // creates the topics
  producer = createKafka({ connection: { brokers: [testKafka()] }, clientId: 'dispatcher-test', logger: pino({ level: 'silent' }) }).producer();
  await producer.connect();
  dispatcher = await startDispatcher();
});

after(async () => {
  await dispatcher?.stop();
  await producer?.disconnect();
  await reader?.stop();
  await receiver.close();
});

test('events of the account reach its webhook, signed, SparkPost-shaped; other accounts\' do not', async () => {
  await receiver.waitFor((r) => r.batches.length >= 1); // the test batch of a webhook seen for the first time
  const ids = await produce('acme', 5);
  await produce('someone-else', 3);
  await receiver.waitFor((r) => r.events().length === 5);
  assert.deepEqual(receiver.events().map((e) => e.event_id), ids);
  assert.ok(receiver.events().every((e) => e.subaccount === 'acme'));
  for (const batch of receiver.accepted()) assert.ok(verifySignature('whsec-kafka', batch.body, String(batch.headers['x-mt-signature'])));
  assert.equal(await dispatcher!.metric('mtrelay_dispatcher_events_total', { account: 'acme', webhook: 'events', result: 'delivered' }), 5);
});

test('a receiver down across a dispatcher restart: nothing committed past its events; the next dispatcher posts them once it is back', async () => {
  receiver.batches.length = 0;
  receiver.status = 503;
  // A partition nothing was committed on yet: the group's starting position, set when the first dispatcher started, holds it.
  const ids = await produce('acme', 3, 1);
  await receiver.waitFor((r) => r.batches.filter((b) => b.status === 503 && b.events.length).length >= 2);
  assert.equal(await dispatcher!.stop(), 0, 'drains and exits 0 while a webhook is failing');
  const pending = await uncommitted(testKafka(), group, `${prefix}.events`);
  assert.ok(pending.some((p) => BigInt(p.end) > BigInt(p.committed)), `the failing webhook's events are not committed: ${JSON.stringify(pending)}`);
  receiver.status = 200;
  dispatcher = await startDispatcher();
  await receiver.waitFor((r) => ids.every((id) => r.events().some((e) => e.event_id === id)), 30_000);
  assert.deepEqual(receiver.events().map((e) => e.event_id).filter((id) => ids.includes(id as string)), ids, 'in order');
});
