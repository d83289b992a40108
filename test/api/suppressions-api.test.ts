// `mtrelay api` as a process beside a relay and a deliverer on the real broker: an account's
// suppression list through HTTP. Entries added (JSON and a CSV file) hold mail back in the
// deliverer within seconds, and their removal lets it through again; a key sees only its own
// account; a key without suppressions/manage gets 403, none 401; bad input gets 400 with the
// field; pages are stable.
// @needs kafka processes
// @limit 120s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { DelivererProcess, MtrelayProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { freePort } from '../kafka/broker.ts';

const prefix = `api${Date.now()}`;
const topicArgs = ['--topic-prefix', prefix];
const sendKey = newApiKey();
const manageKey = newApiKey();
const otherAccountKey = newApiKey();
const account = accountFolder(sendKey);
account.write('manage.yaml', apiKeyYaml('acme', 'manage', manageKey, { permissions: ['suppressions/manage', 'events/read'] }));
account.write('globex.yaml', apiKeyYaml('globex', 'manage', otherAccountKey, { permissions: ['suppressions/manage'] }));
let sink: SmtpSink;
let relay: RelayProcess;
let deliverer: DelivererProcess;
let api: MtrelayProcess;
let base = '';
let events: KafkaReader;

before(async () => {
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--allow-auth-without-tls', ...topicArgs] });
  deliverer = await DelivererProcess.start({ resources: account.dir, kafka: testKafka(), args: [...topicArgs, '--route', `*=127.0.0.1:${sink.port}`] });
  api = new MtrelayProcess(['api', '--resources', account.dir, '--kafka', testKafka(), ...topicArgs, '--host', '127.0.0.1', '--port', '0',
    '--metrics-host', '127.0.0.1', '--metrics-port', '0']);
  const ready = await api.started('api listening');
  api.metricsPort = ready.metricsPort as number;
  await api.waitUntilReady();
  base = `http://127.0.0.1:${ready.port as number}/api/v1/suppression-list`;
  events = await KafkaReader.start(testKafka(), `${prefix}.events`, false);
});
after(async () => {
  await Promise.all([relay?.stop(), deliverer?.stop(), api?.stop(), events?.stop()]);
  await sink?.close();
});

async function call(method: string, path: string, key: string | undefined, body?: string, contentType = 'application/json') {
  const response = await fetch(`${base}${path}`, { method, headers: { ...(key ? { authorization: key } : {}), ...(body ? { 'content-type': contentType } : {}) }, ...(body ? { body } : {}) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) as Record<string, any> : undefined }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Sends one message; resolves with what the deliverer did with it (delivery or policy_rejection). */
async function outcome(to: string, transactional = false): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: sendKey } });
  const info = await transport.sendMail({ from: 'app@example.com', to, subject: 'hi', text: 'hi', ...(transactional ? { headers: { 'X-MT-ATTR': '{"optionsAttributes":{"transactional":true}}' } } : {}) });
  const id = /OK (\d+)$/.exec(info.response)![1]!;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = events.records.map((r) => JSON.parse(r.value.toString()) as { type: string; transmission_id: string }).find((e) => e.transmission_id === id && e.type !== 'injection');
    if (found) return found.type;
    if (Date.now() > deadline) throw new Error(`no outcome for ${id}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The deliverer follows the topic: an outcome may take a moment to change. */
async function eventuallyOutcome(to: string, want: string, transactional = false): Promise<string> {
  const deadline = Date.now() + 15_000;
  let got = await outcome(to, transactional);
  while (got !== want && Date.now() < deadline) got = await outcome(to, transactional);
  return got;
}

test('without a key 401, with a key lacking suppressions/manage 403, each with a message', async () => {
  const none = await call('GET', '', undefined);
  assert.equal(none.status, 401);
  assert.match(none.body!.errors[0].message, /API key is required/);
  const sendOnly = await call('GET', '', sendKey);
  assert.equal(sendOnly.status, 403);
  assert.equal(sendOnly.body!.errors[0].message, 'The API key acme/app lacks the suppressions/manage permission');
  assert.equal((await call('GET', '', 'mt_not-a-key')).status, 401);
});

test('entries added through the API hold mail back in the deliverer; removing them lets it through again', async () => {
  assert.equal(await outcome('later@recipient.test'), 'delivery');
  const added = await call('PUT', '', manageKey, JSON.stringify({ recipients: [
    { recipient: 'Later@Recipient.test', description: 'asked us by phone' },
    { recipient: 'bulk-only@recipient.test', type: 'non_transactional' },
  ] }));
  assert.deepEqual([added.status, added.body!.results], [200, { message: 'Suppression List successfully updated', count: 2 }]);
  assert.equal(await eventuallyOutcome('later@recipient.test', 'policy_rejection'), 'policy_rejection');
  assert.equal(await eventuallyOutcome('bulk-only@recipient.test', 'policy_rejection'), 'policy_rejection');
  assert.equal(await outcome('bulk-only@recipient.test', true), 'delivery', 'a non_transactional entry lets transactional mail through');

  const looked = await call('GET', '/later@recipient.test', manageKey);
  assert.equal(looked.status, 200);
  assert.deepEqual({ ...looked.body!.results[0], created: undefined }, { recipient: 'later@recipient.test', type: 'all', source: 'manual', description: 'asked us by phone', created: undefined });

  const removed = await call('DELETE', '/later@recipient.test', manageKey);
  assert.equal(removed.status, 204);
  assert.equal((await call('GET', '/later@recipient.test', manageKey)).status, 404);
  const since = Date.now();
  assert.equal(await eventuallyOutcome('later@recipient.test', 'delivery'), 'delivery', 'removal is honoured by the deliverer');
  assert.ok(Date.now() - since < 15_000);
  assert.equal((await call('DELETE', '/never@recipient.test', manageKey)).status, 404);
});

test('a CSV file imports in bulk; pages are stable; another account sees none of it', async () => {
  const rows = Array.from({ length: 250 }, (_, i) => `user${String(i).padStart(3, '0')}@bulk.test,${i % 2 ? 'non_transactional' : 'all'},imported`);
  const imported = await call('PUT', '', manageKey, ['recipient,type,description', ...rows].join('\n'), 'text/csv');
  assert.deepEqual([imported.status, imported.body!.results.count], [200, 250]);
  const seen: string[] = [];
  let cursor = '';
  for (let pages = 0; pages < 10; pages++) {
    const listed = await call('GET', `?limit=100${cursor ? `&${cursor}` : ''}`, manageKey);
    assert.equal(listed.status, 200);
    seen.push(...listed.body!.results.map((e: { recipient: string }) => e.recipient));
    // An entry added while paging sorts before the cursor and does not shift the pages.
    if (pages === 0) await call('PUT', '', manageKey, JSON.stringify({ recipients: [{ recipient: 'aaa@bulk.test' }] }));
    if (!listed.body!.links) break;
    cursor = listed.body!.links.next as string;
  }
  const bulk = seen.filter((r) => r.endsWith('@bulk.test') && r !== 'aaa@bulk.test');
  assert.equal(bulk.length, 250);
  assert.equal(new Set(seen).size, seen.length, 'no entry on two pages');
  const other = await call('GET', '', otherAccountKey);
  assert.deepEqual([other.status, other.body!.total_count], [200, 0]);
  assert.equal((await call('GET', '/user000@bulk.test', otherAccountKey)).status, 404);
});

test('bad input gets 400 naming the problem; nothing of it is stored', async () => {
  const invalid = await call('PUT', '', manageKey, JSON.stringify({ recipients: [{ recipient: 'ok@x.test' }, { recipient: 'not an address' }] }));
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body!.errors[0].message, 'recipients[1].recipient: must be a valid email');
  assert.equal((await call('GET', '/ok@x.test', manageKey)).status, 404);
  const csv = await call('PUT', '', manageKey, 'recipient,type\nfine@x.test,sometimes\n', 'text/csv');
  assert.equal(csv.status, 400);
  assert.match(csv.body!.errors[0].message, /^recipients\[0\]\.type: /);
  assert.equal((await call('PUT', '', manageKey, '{"recipients":', 'application/json')).status, 400);
});
