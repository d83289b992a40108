// Standalone's webhooks follow its event log: lines appended are posted; the checkpoint never
// passes an event a webhook still needs, so one stopped while its receiver fails posts the
// rest after a restart, and nothing twice that was delivered; a line half written waits.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { DeliveryStatusBook } from '../../dispatcher/delivery-status.ts';
import { Dispatcher } from '../../dispatcher/dispatcher.ts';
import { EventLogSource } from '../../dispatcher/event-log-source.ts';
import { createDispatcherMetrics } from '../../dispatcher/metrics.ts';
import { webhookAgent } from '../../dispatcher/outbound.ts';
import { OAuth2Tokens, sendBatch } from '../../dispatcher/webhook-sender.ts';
import { compileResources } from '../../shared/config/compiler.ts';
import { ConfigStore } from '../../shared/config/store.ts';
import { tempDir } from '../helpers/resources.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';

const logger = pino({ level: 'silent' });
const receiver = new WebhookReceiver();
const dir = tempDir('event-log');
const log = path.join(dir, 'events.jsonl');
const checkpoint = path.join(dir, 'webhooks.checkpoint');
const POLICY = { maxBatchEvents: 10, maxBatchBytes: 1 << 20, lingerMs: 50, firstRetryMs: 100, maxRetryMs: 200, giveUpAfterMs: 60_000, maxBacklog: 1000 };

before(() => receiver.listen());
after(() => receiver.close());

function start(): EventLogSource {
  const store = new ConfigStore();
  store.apply(compileResources({ domains: [], apiKeys: [], secrets: new Map(), webhooks: [
    { apiVersion: 'mtrelay.dev/v1alpha1', kind: 'Webhook', metadata: { name: 'log', namespace: 'acme' }, spec: { url: receiver.url('/log'), allowInsecureUrl: true } },
  ] }).config);
  const outbound = { agent: webhookAgent(true), allowPrivate: true };
  const tokens = new OAuth2Tokens(outbound);
  const dispatcher = new Dispatcher({
    store, policy: POLICY, logger, status: new DeliveryStatusBook(undefined, logger), metrics: createDispatcherMetrics(new Registry()),
    send: (w, id, events) => sendBatch(w, id, events, tokens, outbound),
  });
  const source = new EventLogSource({ log, checkpoint, dispatcher, logger, pollMs: 50 });
  source.start();
  return source;
}

const event = (namespace = 'acme') => ({ type: 'delivery', event_id: randomUUID(), timestamp: new Date().toISOString(), namespace, transmission_id: '1', rcpt_to: 'a@x.test' });
const append = (events: object[]) => appendFileSync(log, events.map((e) => `${JSON.stringify(e)}\n`).join(''));

test('events before the first start are not posted; appended ones are, a half-written line once it is whole', async () => {
  append([event(), event()]);
  const source = start();
  const later = [event(), event('other'), event()];
  append(later.slice(0, 2));
  const last = JSON.stringify(later[2]);
  appendFileSync(log, last.slice(0, 20));
  await receiver.waitFor((r) => r.events().length === 1);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(receiver.events().length, 1, 'the half line waits');
  appendFileSync(log, `${last.slice(20)}\n`);
  await receiver.waitFor((r) => r.events().length === 2);
  assert.deepEqual(receiver.events().map((e) => e.event_id), [later[0]!.event_id, later[2]!.event_id]);
  await source.stop();
  assert.equal(Number(readFileSync(checkpoint, 'utf8')), readFileSync(log).length, 'all done: the checkpoint is at the end');
});

test('stopped while the receiver fails: the checkpoint stays before its events; the next start posts them once', async () => {
  receiver.batches.length = 0;
  receiver.status = 503;
  const source = start();
  const before = readFileSync(log).length;
  const waiting = [event(), event()];
  append(waiting);
  await receiver.waitFor((r) => r.batches.filter((b) => b.status === 503 && b.events.length).length >= 2);
  await source.stop();
  assert.equal(Number(readFileSync(checkpoint, 'utf8')), before);
  receiver.status = 200;
  const again = start();
  await receiver.waitFor((r) => r.events().length === 2);
  assert.deepEqual(receiver.events().map((e) => e.event_id), waiting.map((e) => e.event_id));
  await new Promise((r) => setTimeout(r, 300));
  await again.stop();
  assert.equal(receiver.events().length, 2, 'each once');
  assert.equal(Number(readFileSync(checkpoint, 'utf8')), readFileSync(log).length);
});
