// The cluster's events store: `mtrelay api` with a private PostgreSQL 15, beside a relay and a
// deliverer on the real broker. Mail sent through the relay is found by the events search and
// traced per recipient (HTTP and `mtrelay events trace`); a key of another account sees nothing
// and a key without events/read gets 403; records consumed twice are one row; events past the
// retention are not stored and day partitions past it are dropped; pages stay stable while
// events arrive; and events published while the database is down are stored once it returns.
// @needs kafka processes postgres
// @limit 150s
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { PostgresEventStore, partitionOf } from '../../api/postgres-events.ts';
import { eventRow } from '../../api/event-rows.ts';
import { testKafka } from '../helpers/env.ts';
import { eventually } from '../helpers/eventually.ts';
import { PostgresServer } from '../helpers/postgres.ts';
import { DelivererProcess, MtrelayProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { freePort, repoRoot } from '../kafka/broker.ts';

const prefix = `evpg${Date.now()}`;
const topicArgs = ['--topic-prefix', prefix];
const sendKey = newApiKey();
const readKey = newApiKey();
const otherAccountKey = newApiKey();
const manageOnlyKey = newApiKey();
const account = accountFolder(sendKey);
account.write('reader.yaml', apiKeyYaml('acme', 'reader', readKey, { permissions: ['events/read'] }));
account.write('manager.yaml', apiKeyYaml('acme', 'manager', manageOnlyKey, { permissions: ['suppressions/manage'] }));
account.write('globex.yaml', apiKeyYaml('globex', 'reader', otherAccountKey, { permissions: ['events/read'] }));
const postgres = new PostgresServer();
let sink: SmtpSink;
let relay: RelayProcess;
let deliverer: DelivererProcess;
let api: MtrelayProcess;
let apiUrl = '';
let producer: Producer;

before(async () => {
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await Promise.all([sink.listen(), postgres.start()]);
  const urlFile = path.join(tempDir('events-db'), 'url');
  writeFileSync(urlFile, `${postgres.url}\n`, { mode: 0o600 });
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--allow-auth-without-tls', ...topicArgs] });
  deliverer = await DelivererProcess.start({ resources: account.dir, kafka: testKafka(), args: [...topicArgs, '--route', `*=127.0.0.1:${sink.port}`] });
  api = new MtrelayProcess(['api', '--resources', account.dir, '--kafka', testKafka(), ...topicArgs, '--host', '127.0.0.1', '--port', '0',
    '--events-database-url-file', urlFile, '--events-group', `store-${prefix}`, '--metrics-host', '127.0.0.1', '--metrics-port', '0']);
  const ready = await api.started('api listening');
  api.metricsPort = ready.metricsPort as number;
  await api.waitUntilReady();
  apiUrl = `http://127.0.0.1:${ready.port as number}`;
  producer = new Kafka({ brokers: [testKafka()], clientId: 'test-events', logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
});
after(async () => {
  await Promise.all([relay?.stop(), deliverer?.stop(), api?.stop(), producer?.disconnect()]);
  await Promise.all([sink?.close(), postgres.stop()]);
});

type Event = { type: string; transmission_id: string; rcpt_to: string; event_id: string; timestamp: string; campaign_id?: string };
type Body = { results: Event[]; links?: { next: string }; errors?: { message: string }[] };

async function get<T = Body>(pathAndQuery: string, key: string | undefined): Promise<{ status: number; body: T }> {
  const response = await fetch(`${apiUrl}${pathAndQuery}`, { headers: key ? { authorization: key } : {} });
  return { status: response.status, body: await response.json() as T };
}

async function send(to: string[], headers: Record<string, string> = {}): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: sendKey } });
  const info = await transport.sendMail({ from: 'Shop <app@example.com>', to, subject: 'Your order', text: 'Thank you.', headers });
  return /OK (\d+)$/.exec(info.response)![1]!;
}

/** An event as the roles publish it, for the account `namespace`. */
function syntheticEvent(fields: Partial<Event> & { namespace?: string } = {}): Event & { namespace: string } {
  return { type: 'delivery', event_id: randomUUID(), timestamp: new Date().toISOString(), transmission_id: '1', rcpt_to: 'x@example.net', namespace: 'acme', ...fields };
}

async function publish(events: object[]): Promise<void> {
  await producer.send({ topic: `${prefix}.events`, acks: -1, messages: events.map((e) => ({ value: JSON.stringify(e) })) });
}

async function rowCount(where = 'true', args: unknown[] = []): Promise<number> {
  const client = await postgres.client();
  try {
    return Number((await client.query(`SELECT count(*) AS n FROM mtrelay_events WHERE ${where}`, args)).rows[0].n);
  } finally {
    await client.end();
  }
}

let traced = '';

test('mail sent through the relay is found in PostgreSQL by recipient, transmission and type, newest first', async () => {
  traced = await send(['ann@example.net', 'bob@example.net'], { 'X-MT-ATTR': '{"campaign_id":"winter"}' });
  const byTransmission = await eventually('injection and delivery of both recipients in the events search', async () => {
    const { body } = await get(`/api/v1/events/message?transmissions=${traced}`, readKey);
    return body.results.length === 4 ? body.results : undefined;
  });
  assert.deepEqual(byTransmission.map((e) => `${e.type} ${e.rcpt_to}`).sort(), ['delivery ann@example.net', 'delivery bob@example.net', 'injection ann@example.net', 'injection bob@example.net']);
  assert.ok(byTransmission.every((e, i) => i === 0 || byTransmission[i - 1]!.timestamp >= e.timestamp), 'newest first');
  const { body: ann } = await get('/api/v1/events/message?recipients=ANN@example.net&events=delivery&campaigns=winter', readKey);
  assert.deepEqual(ann.results.map((e) => [e.type, e.rcpt_to, e.transmission_id, e.campaign_id]), [['delivery', 'ann@example.net', traced, 'winter']]);
  assert.equal(await rowCount('transmission_id = $1', [traced]), 4, 'the rows are in PostgreSQL');
  assert.ok(await api.metric('mtrelay_api_events_stored_total') >= 4);
  assert.equal(await api.metric('mtrelay_api_events_store_up'), 1);
});

test('the trace: one timeline per recipient from the API and from `mtrelay events trace`', async () => {
  const { status, body } = await get<{ results: { transmission_id: string; subject: string; recipients: { rcpt_to: string; status: string; steps: { type: string; detail: string }[] }[] } }>(
    `/api/v1/events/trace/${traced}`, readKey);
  assert.equal(status, 200);
  assert.equal(body.results.subject, 'Your order');
  assert.deepEqual(body.results.recipients.map((r) => [r.rcpt_to, r.status, r.steps.map((s) => s.type)]),
    [['ann@example.net', 'delivered', ['injection', 'delivery']], ['bob@example.net', 'delivered', ['injection', 'delivery']]]);
  assert.match(body.results.recipients[0]!.steps[1]!.detail, /^delivered to 127\.0\.0\.1/);

  const run = promisify(execFile);
  const cli = await run(process.execPath, [path.join(repoRoot, 'cli.ts'), 'events', 'trace', traced, '--api-url', apiUrl], { env: { ...process.env, MTRELAY_API_KEY: readKey } });
  assert.match(cli.stdout, new RegExp(`^transmission ${traced}: "Your order" from Shop <app@example.com>\\n`));
  assert.match(cli.stdout, /\nann@example\.net — delivered\n {2}\S+ {2}injection {8}accepted from Shop <app@example\.com> \(\d+ bytes\)\n {2}\S+ {2}delivery {9}delivered to 127\.0\.0\.1/);
  const other = await run(process.execPath, [path.join(repoRoot, 'cli.ts'), 'events', 'trace', traced, '--api-url', apiUrl], { env: { ...process.env, MTRELAY_API_KEY: otherAccountKey } })
    .then(() => assert.fail('another account\'s trace must not succeed'), (error: { code: number; stdout: string }) => error);
  assert.equal(other.code, 1, 'no events: exit code 1');
  assert.match(other.stdout, /no events \(the id is unknown to this account/);
  const refused = await run(process.execPath, [path.join(repoRoot, 'cli.ts'), 'events', 'trace', traced, '--api-url', apiUrl], { env: { ...process.env, MTRELAY_API_KEY: manageOnlyKey } })
    .then(() => assert.fail('a key without events/read must be refused'), (error: { code: number; stderr: string }) => error);
  assert.match(refused.stderr, /^mtrelay: the API answered 403: .*events\/read/m);
});

test('a key of another account sees nothing; without events/read 403; without a key 401', async () => {
  const other = await get(`/api/v1/events/message?transmissions=${traced}`, otherAccountKey);
  assert.deepEqual([other.status, other.body.results], [200, []]);
  const otherTrace = await get<{ results: { recipients: unknown[] } }>(`/api/v1/events/trace/${traced}`, otherAccountKey);
  assert.deepEqual(otherTrace.body.results.recipients, []);
  const forbidden = await get('/api/v1/events/message', manageOnlyKey);
  assert.equal(forbidden.status, 403);
  assert.match(forbidden.body.errors![0]!.message, /events\/read/);
  assert.equal((await get('/api/v1/events/message', undefined)).status, 401);
  const bad = await get('/api/v1/events/trace/not-an-id', readKey);
  assert.equal(bad.status, 400);
  assert.match(bad.body.errors![0]!.message, /is not a transmission id/);
});

test('a record consumed twice is one row; an event older than the retention is not stored', async () => {
  const twice = syntheticEvent({ transmission_id: '2', rcpt_to: 'twice@example.net' });
  const old = syntheticEvent({ transmission_id: '2', rcpt_to: 'old@example.net', timestamp: new Date(Date.now() - 11 * 24 * 3600_000).toISOString() });
  const marker = syntheticEvent({ transmission_id: '2', rcpt_to: 'marker@example.net' });
  await publish([twice, old]);
  await publish([twice, marker]);
  await eventually('the marker event stored', async () => (await rowCount('event_id = $1', [marker.event_id])) === 1 || undefined);
  assert.equal(await rowCount('event_id = $1', [twice.event_id]), 1, 'the same event twice is one row');
  assert.equal(await rowCount('event_id = $1', [old.event_id]), 0, 'past the retention: not stored');
});

test('pages stay stable while events arrive: every event once, in order, across pages', async () => {
  const seed = Array.from({ length: 60 }, (_, i) => syntheticEvent({ transmission_id: '3', rcpt_to: `page${i}@example.net`, timestamp: new Date(Date.now() - 60_000 + i * 100).toISOString() }));
  await publish(seed);
  await eventually('the 60 events stored', async () => (await rowCount(`transmission_id = '3'`)) === 60 || undefined);
  const seen: Event[] = [];
  let next = '/api/v1/events/message?transmissions=3&per_page=7';
  let arriving = 0;
  while (next) {
    const { body } = await get(next, readKey);
    seen.push(...body.results);
    next = body.links?.next ?? '';
    // Newer events land while the pages are read; they belong to a search made later.
    await publish([syntheticEvent({ transmission_id: '3', rcpt_to: `late${arriving++}@example.net` })]);
  }
  assert.deepEqual(seen.map((e) => e.event_id), seed.map((e) => e.event_id).reverse(), 'each seeded event once, newest first');
});

test('events published while the database is down wait in Kafka and are stored once it is back', async () => {
  await postgres.halt();
  const waiting = Array.from({ length: 5 }, (_, i) => syntheticEvent({ transmission_id: '4', rcpt_to: `outage${i}@example.net` }));
  await publish(waiting);
  await eventually('the store reported down', async () => (await api.metric('mtrelay_api_events_store_up')) === 0 || undefined, 20_000);
  assert.ok(await api.metric('mtrelay_api_events_store_failures_total') >= 1);
  const search = await get('/api/v1/events/message?transmissions=4', readKey);
  assert.equal(search.status, 503, 'a search while the database is down: 503, try again');
  assert.equal((await fetch(`${apiUrl}/api/v1/suppression-list`, { headers: { authorization: manageOnlyKey } })).status, 200, 'the suppression list still answers');
  await postgres.resume();
  await eventually('the waiting events stored', async () => (await rowCount(`transmission_id = '4'`)) === 5 || undefined, 30_000);
  assert.equal(await api.metric('mtrelay_api_events_store_up'), 1);
});

test('retention drops whole day partitions, and the store makes the partition of each day it gets', async () => {
  const store = new PostgresEventStore({ url: postgres.url, retentionDays: 10, logger: pino({ level: 'silent' }) });
  await store.open();
  try {
    const now = Date.now();
    const threeDaysAgo = syntheticEvent({ transmission_id: '5', timestamp: new Date(now - 3 * 24 * 3600_000).toISOString() });
    assert.equal(await store.insert([eventRow(JSON.stringify(threeDaysAgo))!], now), 1);
    assert.equal(await store.insert([eventRow(JSON.stringify(threeDaysAgo))!], now), 0, 'idempotent');
    const partitions = async () => {
      const client = await postgres.client();
      try {
        return (await client.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'mtrelay_events'::regclass ORDER BY 1`)).rows.map((r) => r.name);
      } finally {
        await client.end();
      }
    };
    const old = partitionOf(now - 3 * 24 * 3600_000).name;
    const today = partitionOf(now).name;
    assert.ok((await partitions()).includes(old) && (await partitions()).includes(today));
    // Eight days on, the partition of three days ago ends before the ten days kept start.
    assert.deepEqual(await store.prune(now + 8 * 24 * 3600_000), [old]);
    assert.ok(!(await partitions()).includes(old) && (await partitions()).includes(today));
    assert.equal(await rowCount('event_id = $1', [threeDaysAgo.event_id]), 0);
    // A partition dropped by hand behind the store's back is made again by the next insert.
    const client = await postgres.client();
    await client.query(`DROP TABLE ${today}`);
    await client.end();
    const again = syntheticEvent({ transmission_id: '5' });
    assert.equal(await store.insert([eventRow(JSON.stringify(again))!]), 1);
    assert.equal(await rowCount('event_id = $1', [again.event_id]), 1);
  } finally {
    await store.close();
  }
});
