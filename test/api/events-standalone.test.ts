// The events API of standalone: what happened to a message, searched by recipient,
// transmission, campaign and type with a key that has events/read, in cursor pages that stay
// stable while events arrive; other accounts' keys see nothing, keys without the permission get
// 403, bad parameters 400 with the reason; and the events are still there after kill -9.
// @needs processes
// @limit 90s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { freePort } from '../kafka/broker.ts';

const state = tempDir('events-standalone');
const sendKey = newApiKey();
const readKey = newApiKey();
const otherKey = newApiKey();
const account = accountFolder(sendKey);
account.write('reader.yaml', apiKeyYaml('acme', 'reader', readKey, { permissions: ['events/read'] }));
account.write('globex.yaml', apiKeyYaml('globex', 'reader', otherKey, { permissions: ['events/read'] }));
let sink: SmtpSink;
let standalone: MtrelayProcess;
let ports = { submit: 0, api: 0 };

async function start(): Promise<void> {
  standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '0',
    '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--route', `*=127.0.0.1:${sink.port}`]);
  const ready = await standalone.started('standalone listening');
  ports = { submit: (ready.ports as { submission: number }).submission, api: ready.apiPort as number };
}

before(async () => {
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  await start();
});
after(async () => {
  await standalone?.stop();
  await sink?.close();
});

type Event = { type: string; transmission_id: string; rcpt_to: string; event_id: string; campaign_id?: string };
type Page = { results: Event[]; links?: { next: string } };

async function get(path: string, key: string | undefined): Promise<{ status: number; body: Page & { errors?: { message: string }[] } }> {
  const response = await fetch(`http://127.0.0.1:${ports.api}${path}`, { headers: key ? { authorization: key } : {} });
  return { status: response.status, body: await response.json() as Page & { errors?: { message: string }[] } };
}

async function send(to: string, headers: Record<string, string> = {}): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: ports.submit, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: sendKey } });
  const info = await transport.sendMail({ from: 'app@example.com', to, subject: 'hi', text: 'hi', headers });
  return /OK (\d+)$/.exec(info.response)![1]!;
}

/** The account's events of a search, once `count` are there. */
async function search(query: string, count: number, key = readKey): Promise<Event[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { status, body } = await get(`/api/v1/events/message?${query}`, key);
    assert.equal(status, 200, JSON.stringify(body));
    if (body.results.length >= count || Date.now() > deadline) return body.results;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sent: Record<string, string> = {};

test('what happened to a message: search by recipient, transmission, campaign and event type', async () => {
  sent.ann = await send('ann@recipient.test');
  sent.bob = await send('Bob@Recipient.test');
  sent.sale = await send('cid@recipient.test', { 'X-MT-ATTR': '{"campaign_id":"spring-sale"}' });
  const ann = await search('recipients=ann@recipient.test', 2);
  // The deliverer writes a message's injection and first outcome at one time; the order among equal times is the event id's.
  assert.deepEqual(ann.map((e) => [e.type, e.transmission_id]).sort(), [['delivery', sent.ann], ['injection', sent.ann]]);
  const all = await search('per_page=10000', 6);
  assert.deepEqual(all.map((e) => Date.parse((e as Event & { timestamp: string }).timestamp)), all.map((e) => Date.parse((e as Event & { timestamp: string }).timestamp)).sort((a, b) => b - a), 'newest first');
  // Recipients are searched without regard to case; events keep the address as it was given.
  assert.deepEqual((await search('recipients=bob@recipient.test', 2)).map((e) => e.rcpt_to), ['Bob@recipient.test', 'Bob@recipient.test']);
  assert.deepEqual((await search(`transmissions=${sent.bob}&events=delivery`, 1)).map((e) => [e.type, e.transmission_id]), [['delivery', sent.bob]]);
  assert.deepEqual([...new Set((await search('campaigns=spring-sale', 2)).map((e) => e.transmission_id))], [sent.sale]);
  assert.equal((await search('events=delivery', 3)).filter((e) => e.type !== 'delivery').length, 0);
  assert.deepEqual(await search('recipients=ann@recipient.test&to=2020-01-01T00:00:00Z&from=2019-01-01T00:00:00Z', 0), [], 'the time range');
});

test('cursor pages are stable while new events arrive: none on two pages, none skipped', async () => {
  const before = await search('per_page=10000', 6);
  const seen: string[] = [];
  let path = '/api/v1/events/message?per_page=2';
  for (let pages = 0; pages < 20; pages++) {
    const { status, body } = await get(path, readKey);
    assert.equal(status, 200);
    seen.push(...body.results.map((e) => e.event_id));
    if (pages === 0) await search(`transmissions=${await send('late@recipient.test')}`, 2); // newer than every page
    if (!body.links) break;
    path = body.links.next;
  }
  assert.equal(new Set(seen).size, seen.length, 'no event on two pages');
  assert.deepEqual(before.map((e) => e.event_id).filter((id) => !seen.includes(id)), [], 'every event there at the start was paged through');
});

test('other accounts see nothing; keys without events/read get 403, none 401; bad parameters 400 with the reason', async () => {
  assert.deepEqual((await get('/api/v1/events/message', otherKey)).body.results, []);
  const sendOnly = await get('/api/v1/events/message', sendKey);
  assert.deepEqual([sendOnly.status, sendOnly.body.errors?.[0]?.message], [403, 'The API key acme/app lacks the events/read permission']);
  assert.equal((await get('/api/v1/events/message', undefined)).status, 401);
  const bad = await get('/api/v1/events/message?events=nope', readKey);
  assert.equal(bad.status, 400);
  assert.match(bad.body.errors![0]!.message, /^events: nope is not an event type/);
  assert.match((await get('/api/v1/events/message?from=yesterday', readKey)).body.errors![0]!.message, /^from: "yesterday" is not a time/);
  assert.match((await get('/api/v1/events/message?recipient=x', readKey)).body.errors![0]!.message, /^recipient is not a search parameter/);
});

test('the events are still there after kill -9 and a restart', async () => {
  await standalone.stop('SIGKILL');
  await start();
  assert.deepEqual((await search(`transmissions=${sent.ann}`, 2)).map((e) => e.type).sort(), ['delivery', 'injection']);
});
