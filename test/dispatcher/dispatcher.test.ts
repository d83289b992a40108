// The dispatcher against real HTTP receivers: SparkPost-shaped batches by count and time, the
// batch id, the signature and each kind of authentication; a failing receiver retried with
// growing gaps and then given its backlog in order while a healthy one is not delayed; a batch
// failing past the give-up time dropped and said so; test batches for new and changed webhooks.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { DeliveryStatusBook } from '../../dispatcher/delivery-status.ts';
import { Dispatcher } from '../../dispatcher/dispatcher.ts';
import { createDispatcherMetrics } from '../../dispatcher/metrics.ts';
import { verifySignature } from '../../dispatcher/signature.ts';
import type { StoredEvent } from '../../dispatcher/sparkpost-shape.ts';
import type { DispatchPolicy } from '../../dispatcher/webhook-queue.ts';
import { OAuth2Tokens, sendBatch } from '../../dispatcher/webhook-sender.ts';
import { isPrivateAddress, webhookAgent } from '../../dispatcher/outbound.ts';
import { compileResources } from '../../shared/config/compiler.ts';
import { ConfigStore } from '../../shared/config/store.ts';
import type { Secret, Webhook } from '../../shared/config/types.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';

const logger = pino({ level: 'silent' });
const receivers = { a: new WebhookReceiver(), b: new WebhookReceiver() };
before(async () => {
  await Promise.all(Object.values(receivers).map((r) => r.listen()));
});
after(async () => {
  await Promise.all(Object.values(receivers).map((r) => r.close()));
});

const POLICY: DispatchPolicy = { maxBatchEvents: 3, maxBatchBytes: 1024 * 1024, lingerMs: 100, firstRetryMs: 100, maxRetryMs: 400, giveUpAfterMs: 60_000, maxBacklog: 1000 };

function secret(namespace: string, name: string, data: Record<string, string>): Secret {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, labels: { 'mtrelay.dev/secret': 'webhook' } }, stringData: data };
}

function webhook(namespace: string, name: string, spec: Webhook['spec']): Webhook {
  return { apiVersion: 'mtrelay.dev/v1alpha1', kind: 'Webhook', metadata: { name, namespace }, spec: { allowInsecureUrl: true, ...spec } };
}

function configStore(webhooks: Webhook[], secrets: Secret[] = []): ConfigStore {
  const store = new ConfigStore();
  const { config, problems } = compileResources({ domains: [], apiKeys: [], webhooks, secrets: new Map(secrets.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s])) });
  assert.deepEqual(problems, []);
  store.apply(config);
  return store;
}

/** The receivers are on loopback: private addresses allowed unless a test says otherwise. */
function dispatcher(store: ConfigStore, policy = POLICY, allowPrivate = true) {
  const registry = new Registry();
  const metrics = createDispatcherMetrics(registry);
  const status = new DeliveryStatusBook(undefined, logger);
  const outbound = { agent: webhookAgent(allowPrivate), allowPrivate };
  const tokens = new OAuth2Tokens(outbound);
  const d = new Dispatcher({ store, policy, status, logger, metrics, send: (w, id, events) => sendBatch(w, id, events, tokens, outbound) });
  return { d, status, registry };
}

let sequence = 0;
function event(namespace: string, type = 'delivery', extra: Record<string, unknown> = {}): StoredEvent {
  return {
    type, event_id: randomUUID(), timestamp: '2026-11-30T00:00:00.000Z', namespace, transmission_id: String(++sequence), rcpt_to: `r${sequence}@x.test`,
    rcpt_type: 'to', tags: ['spring'], rcpt_meta: { plan: 'pro' }, ...extra,
  };
}

test('SparkPost-shaped batches by count and by time, each with its batch id, signed; events done once delivered', async () => {
  const receiver = receivers.a;
  receiver.batches.length = 0;
  const store = configStore([webhook('acme', 'signed', { url: receiver.url('/hook'), signing: { secretRef: { name: 'sig' } } })], [secret('acme', 'sig', { secret: 'whsec-test' })]);
  const { d } = dispatcher(store);
  await receiver.waitFor((r) => r.batches.length === 1); // the test batch
  assert.deepEqual(receiver.batches[0]!.events, [{ msys: {} }]);
  assert.match(String(receiver.batches[0]!.headers['x-messagesystems-batch-id']), /^test-[0-9a-f]{32}$/);

  const sent = [...Array.from({ length: 6 }, () => event('acme')), event('acme', 'click', { target_link_url: 'https://x.test/' }), event('other')];
  const done: string[] = [];
  for (const e of sent) d.dispatch(e, () => done.push(e.event_id));
  assert.deepEqual(done, [sent[7]!.event_id], 'an event no webhook wants is done at once');
  await receiver.waitFor((r) => r.accepted().length === 3);
  assert.deepEqual(receiver.accepted().map((b) => b.events.length), [3, 3, 1], 'full batches at once, the rest after the linger time');
  assert.equal(new Set(receiver.accepted().map((b) => b.headers['x-messagesystems-batch-id'])).size, 3);
  for (const batch of receiver.accepted()) assert.ok(verifySignature('whsec-test', batch.body, String(batch.headers['x-mt-signature'])), 'signature verifies');
  assert.ok(!verifySignature('another-secret', receiver.accepted()[0]!.body, String(receiver.accepted()[0]!.headers['x-mt-signature'])));
  const [first] = receiver.accepted()[0]!.events;
  assert.deepEqual(first, { msys: { message_event: {
    type: 'delivery', event_id: sent[0]!.event_id, timestamp: String(Date.parse('2026-11-30T00:00:00.000Z') / 1000), subaccount: 'acme', transmission_id: sent[0]!.transmission_id,
    rcpt_to: sent[0]!.rcpt_to, rcpt_type: 'to', rcpt_tags: ['spring'], rcpt_meta: { plan: 'pro' },
  } } });
  assert.equal(Object.keys(receiver.accepted()[2]!.events[0]!.msys)[0], 'track_event');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(new Set(done), new Set(sent.map((e) => e.event_id)));
});

test('basic, bearer and OAuth2 client credentials authenticate; a webhook gets only the types it asked for', async () => {
  const receiver = receivers.b;
  receiver.batches.length = 0;
  receiver.oauth.credentials = 'client-1:s3cret';
  const store = configStore([
    webhook('acme', 'basic', { url: receiver.url('/basic'), events: ['bounce'], auth: { type: 'basic', secretRef: { name: 'basic' } } }),
    webhook('acme', 'bearer', { url: receiver.url('/bearer'), events: ['bounce'], auth: { type: 'bearer', secretRef: { name: 'bearer' } } }),
    webhook('acme', 'oauth', { url: receiver.url('/oauth'), events: ['bounce'], auth: { type: 'oauth2', secretRef: { name: 'oauth' }, tokenUrl: receiver.url('/token'), scope: 'events' } }),
  ], [secret('acme', 'basic', { username: 'u', password: 'p' }), secret('acme', 'bearer', { token: 't0ken' }), secret('acme', 'oauth', { clientId: 'client-1', clientSecret: 's3cret' })]);
  const { d } = dispatcher(store);
  await receiver.waitFor((r) => r.batches.length === 3);
  d.dispatch(event('acme', 'delivery'), () => undefined);
  d.dispatch(event('acme', 'bounce'), () => undefined);
  await receiver.waitFor((r) => r.accepted().length === 3);
  const auth = Object.fromEntries(receiver.accepted().map((b) => [b.path, b.headers.authorization]));
  assert.deepEqual(auth, { '/basic': `Basic ${Buffer.from('u:p').toString('base64')}`, '/bearer': 'Bearer t0ken', '/oauth': 'Bearer tok-1' });
  assert.deepEqual(receiver.events().map((e) => e.type), ['bounce', 'bounce', 'bounce']);
  assert.deepEqual(receiver.oauth.issued, ['tok-1'], 'the token is fetched once and reused');
});

test('a failing receiver: retried with growing gaps, then its backlog in order; a healthy webhook meanwhile is not delayed', async () => {
  const [failing, healthy] = [receivers.a, receivers.b];
  failing.batches.length = 0;
  healthy.batches.length = 0;
  failing.status = 503;
  const store = configStore([webhook('acme', 'down', { url: failing.url('/down') }), webhook('acme', 'up', { url: healthy.url('/up') })]);
  const { d, status } = dispatcher(store, { ...POLICY, maxBatchEvents: 2 });
  await healthy.waitFor((r) => r.batches.length === 1);
  const sent = Array.from({ length: 6 }, () => event('acme'));
  const done = new Set<string>();
  const started = Date.now();
  for (const e of sent) d.dispatch(e, () => done.add(e.event_id));
  await healthy.waitFor((r) => r.events().length === 6, 3000);
  assert.ok(Date.now() - started < 1500, `the healthy webhook got everything in ${Date.now() - started} ms`);
  await failing.waitFor((r) => r.batches.filter((b) => b.path === '/down').length >= 5);
  const attempts = failing.batches.filter((b) => b.path === '/down' && !String(b.headers['x-messagesystems-batch-id']).startsWith('test-'));
  assert.equal(new Set(attempts.map((b) => b.headers['x-messagesystems-batch-id'])).size, 1, 'the same first batch, again and again, nothing after it');
  const gaps = attempts.slice(1).map((b, i) => b.at - attempts[i]!.at);
  assert.ok(gaps.at(-1)! > gaps[0]! * 1.5, `gaps grow: ${gaps.join(', ')} ms`);
  assert.equal(done.size, 0, 'no event is done while one webhook still needs it');
  assert.match(status.get('acme/down').lastFailure ?? '', /HTTP 503/);
  assert.ok(status.get('acme/down').failingSince);

  failing.status = 200;
  await failing.waitFor((r) => r.events().length === 6, 5000);
  assert.deepEqual(failing.events().map((e) => e.event_id), sent.map((e) => e.event_id), 'in order');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(done.size, 6);
  assert.equal(status.get('acme/down').failingSince, null);
  assert.ok(status.get('acme/down').lastSuccessAt);
});

test('a batch failing past the give-up time is dropped: its events are done, the drop counted and in the status', async () => {
  const receiver = receivers.a;
  receiver.batches.length = 0;
  receiver.status = 500;
  const store = configStore([webhook('acme', 'dead', { url: receiver.url('/dead') })]);
  const { d, status, registry } = dispatcher(store, { ...POLICY, giveUpAfterMs: 700 });
  const done: string[] = [];
  const e = event('acme');
  d.dispatch(e, () => done.push(e.event_id));
  const deadline = Date.now() + 5000;
  while (!done.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(done, [e.event_id]);
  assert.match(status.get('acme/dead').lastDrop ?? '', /^1 events: failing for \d+ s: HTTP 500$/);
  assert.match(await registry.metrics(), /mtrelay_dispatcher_events_total\{account="acme",webhook="dead",result="dropped"\} 1/);
  receiver.status = 200;
});

test('a test batch when a webhook appears or its target changes, not when something else changes', async () => {
  const receiver = receivers.b;
  receiver.batches.length = 0;
  const store = configStore([webhook('acme', 'hook', { url: receiver.url('/v1') })]);
  dispatcher(store);
  await receiver.waitFor((r) => r.batches.length === 1);
  const update = (url: string, events: Webhook['spec']['events']) => {
    const { config } = compileResources({ domains: [], apiKeys: [], webhooks: [webhook('acme', 'hook', { url, ...(events ? { events } : {}) })], secrets: new Map() });
    store.apply(config);
  };
  update(receiver.url('/v1'), ['bounce']);
  update(receiver.url('/v2'), ['bounce']);
  await receiver.waitFor((r) => r.batches.length === 2);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(receiver.batches.map((b) => b.path), ['/v1', '/v2']);
  assert.ok(receiver.batches.every((b) => String(b.headers['x-messagesystems-batch-id']).startsWith('test-')));
});

test('by default a webhook may not reach loopback, private or link-local addresses, by IP or by a name that resolves there', async () => {
  const receiver = receivers.a;
  receiver.batches.length = 0;
  const store = configStore([webhook('acme', 'inside', { url: receiver.url('/inside') }), webhook('acme', 'named', { url: receiver.url('/named').replace('127.0.0.1', 'localhost') })]);
  const { status } = dispatcher(store, POLICY, false);
  const deadline = Date.now() + 5000;
  while ((!status.get('acme/inside').lastTest || !status.get('acme/named').lastTest) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(status.get('acme/inside').lastTest!.result, /^127\.0\.0\.1 is 127\.0\.0\.1, a private address webhooks may not reach/);
  assert.match(status.get('acme/named').lastTest!.result, /^localhost is (127\.0\.0\.1|::1), a private address webhooks may not reach/);
  assert.equal(receiver.batches.length, 0, 'nothing reached the receiver');
  for (const address of ['10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '::1', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '0.0.0.0']) {
    assert.ok(isPrivateAddress(address), address);
  }
  for (const address of ['8.8.8.8', '1.1.1.1', '2001:4860:4860::8888', '::ffff:8.8.8.8']) assert.ok(!isPrivateAddress(address), address);
});
