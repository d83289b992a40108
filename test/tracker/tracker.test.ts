// `mtrelay tracker` as a process, against the real broker: a signed open pixel answers a GIF
// that is never cached and a signed click redirects to its target, each publishing its event;
// anything unsigned, altered, expired or of the other kind gets 404 and no event; an unsubscribe
// link shows a page on GET and, on a one-click POST, writes the suppression and the event before
// it answers; a rotated key file is picked up without a restart; SIGTERM drains.
// @needs kafka processes
// @limit 60s
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { keyRing, signToken, type TrackingClaims } from '../../shared/tracking/tokens.ts';
import { PIXEL } from '../../tracker/tracker-server.ts';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { eventually } from '../helpers/eventually.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { tempDir } from '../helpers/resources.ts';

const prefix = `trk${Date.now()}`;
const keysFile = path.join(tempDir('tracker'), 'keys');
const k1 = { id: 'k1', secret: randomBytes(32) };
const k2 = { id: 'k2', secret: randomBytes(32) };
const writeKeys = (...keys: { id: string; secret: Buffer }[]) => writeFileSync(keysFile, keys.map((k) => `${k.id} ${k.secret.toString('base64')}\n`).join(''));
let tracker: MtrelayProcess;
let base = '';
let events: KafkaReader;
let suppressions: KafkaReader;

const claims = (kind: TrackingClaims['kind'], extra: Partial<TrackingClaims> = {}): TrackingClaims => ({
  kind, transmissionId: `t-${randomBytes(4).toString('hex')}`, rcptTo: 'reader@example.com', namespace: 'shop',
  expiresAt: Math.floor(Date.now() / 1000) + 3600, ...(kind === 'click' ? { target: 'https://shop.example.com/sale?x=1' } : {}), ...extra,
});
const get = (url: string, method = 'GET') => fetch(url, { method, redirect: 'manual', headers: { 'user-agent': 'TestMail/1.0' } });
const eventsOf = (transmissionId: string) => events.records.map((r) => JSON.parse(r.value.toString()) as Record<string, unknown>).filter((e) => e.transmission_id === transmissionId);

before(async () => {
  writeKeys(k1);
  events = await KafkaReader.start(testKafka(), `${prefix}.events`);
  suppressions = await KafkaReader.start(testKafka(), `${prefix}.suppressions`, false);
  tracker = new MtrelayProcess(['tracker', '--kafka', testKafka(), '--topic-prefix', prefix, '--host', '127.0.0.1', '--port', '0',
    '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--tracking-keys', keysFile]);
  const ready = await tracker.started('tracker listening');
  tracker.metricsPort = ready.metricsPort as number;
  base = `http://127.0.0.1:${ready.port as number}`;
  await tracker.waitUntilReady();
});
after(async () => {
  await tracker?.stop();
  await events?.stop();
  await suppressions?.stop();
});

test("a signed open pixel: a GIF never cached, and an open event with the reader's address and user agent", async () => {
  const open = claims('open');
  const response = await get(`${base}/o/${signToken(keyRing([k1]), open)}.gif`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'image/gif');
  assert.match(response.headers.get('cache-control') ?? '', /no-store/);
  assert.ok(Buffer.from(await response.arrayBuffer()).equals(PIXEL));
  const [event] = await waitForEvents(open.transmissionId, 1);
  assert.deepEqual({ ...event, event_id: undefined, timestamp: undefined }, {
    type: 'open', transmission_id: open.transmissionId, namespace: 'shop', rcpt_to: 'reader@example.com', ip_address: '127.0.0.1',
    user_agent: 'TestMail/1.0', machine: false, event_id: undefined, timestamp: undefined,
  });
  const initial = claims('initial_open');
  assert.equal((await get(`${base}/o/${signToken(keyRing([k1]), initial)}.gif`)).status, 200);
  assert.equal((await waitForEvents(initial.transmissionId, 1))[0]!.type, 'initial_open');
});

test('a signed click: 302 to the signed target, and a click event naming it', async () => {
  const click = claims('click');
  const response = await get(`${base}/c/${signToken(keyRing([k1]), click)}`);
  assert.equal(response.status, 302);
  assert.equal(response.headers.get('location'), 'https://shop.example.com/sale?x=1');
  const [event] = await waitForEvents(click.transmissionId, 1);
  assert.equal(event!.type, 'click');
  assert.equal(event!.target_link_url, 'https://shop.example.com/sale?x=1');
});

test('unsigned, altered, expired, wrong-kind or unknown tokens get 404 and no event; HEAD answers without an event', async () => {
  const click = claims('click');
  const token = signToken(keyRing([k1]), click);
  const [id, payload, mac] = token.split('.') as [string, string, string];
  const altered = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), u: 'https://evil.example.net/' })).toString('base64url');
  const expired = signToken(keyRing([k1]), { ...click, expiresAt: Math.floor(Date.now() / 1000) - 1 });
  const other = signToken(keyRing([{ id: 'k1', secret: randomBytes(32) }]), click);
  for (const url of [`/c/${id}.${altered}.${mac}`, `/c/${expired}`, `/c/${other}`, `/o/${token}.gif`, `/c/${signToken(keyRing([k1]), { ...click, kind: 'open', target: undefined })}`,
    '/c/https%3A%2F%2Fevil.example.net%2F', '/c/', '/', `/x/${token}`]) {
    const response = await get(`${base}${url}`);
    assert.equal(response.status, 404, url);
    assert.equal(response.headers.get('location'), null);
  }
  assert.equal((await get(`${base}/c/${token}`, 'HEAD')).status, 302);
  assert.equal((await get(`${base}/c/${token}`, 'POST')).status, 404);
  assert.match(await rawRequest('GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 (404|400) /, 'a request line no URL parser takes');
  assert.equal((await get(`${base}/healthz`.replace(base, `http://127.0.0.1:${tracker.metricsPort}`))).status, 200, 'still alive');
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(eventsOf(click.transmissionId), [], 'no event for any of them');
  assert.ok(await tracker.metric('mtrelay_tracker_requests_total', { route: 'click', result: 'bad_signature' }) >= 2);
});

test('an unsubscribe link: GET shows a page and changes nothing; a one-click POST suppresses the recipient for non-transactional mail and publishes list_unsubscribe before the answer', async () => {
  const unsubscribe = claims('unsubscribe', { campaignId: 'weekly' });
  const url = `${base}/u/${signToken(keyRing([k1]), unsubscribe)}`;
  const page = await get(url);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  assert.match(await page.text(), /Stop sending mail like this to <strong id="address">reader@example\.com<\/strong>\?/);
  assert.equal((await fetch(url, { method: 'POST', body: '' })).status, 400, 'a POST that asks for nothing');
  assert.equal((await get(`${base}/o/${signToken(keyRing([k1]), unsubscribe)}.gif`)).status, 404, 'not a pixel');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(eventsOf(unsubscribe.transmissionId), [], 'looking is not unsubscribing');

  const posted = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'GoogleOneClick/1.0' }, body: 'List-Unsubscribe=One-Click' });
  assert.equal(posted.status, 200);
  const [event] = await waitForEvents(unsubscribe.transmissionId, 1);
  assert.deepEqual({ ...event, event_id: undefined, timestamp: undefined }, {
    type: 'list_unsubscribe', transmission_id: unsubscribe.transmissionId, namespace: 'shop', rcpt_to: 'reader@example.com', ip_address: '127.0.0.1',
    user_agent: 'GoogleOneClick/1.0', campaign_id: 'weekly', event_id: undefined, timestamp: undefined,
  });
  const entry = await eventually('the suppression entry', () => suppressions.records.find((r) => r.key === 'shop/reader@example.com#non_transactional'));
  assert.deepEqual((({ created, ...rest }) => rest)(JSON.parse(entry.value.toString()) as Record<string, unknown>), {
    namespace: 'shop', address: 'reader@example.com', source: 'unsubscribe', type: 'non_transactional',
    reason: 'unsubscribed with the mail client\'s unsubscribe button (RFC 8058 one-click)',
  });
  assert.equal(await tracker.metric('mtrelay_tracker_unsubscribes_total', { type: 'list_unsubscribe' }), 1);
});

test('a new key file is picked up without a restart: new and old tokens both work while both keys are listed', async () => {
  writeKeys(k2, k1);
  const fresh = signToken(keyRing([k2]), claims('open'));
  const deadline = Date.now() + 10_000;
  while ((await get(`${base}/o/${fresh}.gif`)).status !== 200) {
    assert.ok(Date.now() < deadline, 'the new key was not picked up within 10 s');
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal((await get(`${base}/o/${signToken(keyRing([k1]), claims('open'))}.gif`)).status, 200, 'the old key still verifies');
});

test('SIGTERM: the tracker drains and exits 0', async () => {
  const open = claims('open');
  assert.equal((await get(`${base}/o/${signToken(keyRing([k1]), open)}.gif`)).status, 200);
  assert.equal(await tracker.stop(), 0);
  assert.equal((await waitForEvents(open.transmissionId, 1)).length, 1, 'the last event was handed over before exit');
});

async function waitForEvents(transmissionId: string, count: number): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 15_000;
  while (eventsOf(transmissionId).length < count) {
    assert.ok(Date.now() < deadline, `no event for ${transmissionId} within 15 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return eventsOf(transmissionId);
}

/** Sends `text` as it is on a new connection to the tracker; resolves with what came back. */
function rawRequest(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(base).port), '127.0.0.1', () => socket.end(text));
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}
