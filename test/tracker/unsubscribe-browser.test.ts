// One-click unsubscribe as recipients and their mail providers use it, through
// `mtrelay standalone`: a reader opens the List-Unsubscribe link of their copy in a real
// headless Chromium, sees their address and presses the button; a provider's one-click POST
// (RFC 8058) unsubscribes another reader. Each becomes its event (link_unsubscribe,
// list_unsubscribe), reaches the account's webhook as an unsubscribe_event, shows in the trace
// and on the suppression list (source unsubscribe, for non-transactional mail), and holds back
// the next mail that is not transactional while receipts still arrive. An account that runs its
// own unsubscribe links turns the field off in its AccountSettings.
// @needs processes chromium
// @limit 60s
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { withBrowser } from '../helpers/browser.ts';
import { eventually } from '../helpers/eventually.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey, signedDomainYaml, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { freePort } from '../kafka/broker.ts';

const sendKey = newApiKey();
const adminKey = newApiKey();
const account = accountFolder(sendKey);
account.write('admin.yaml', apiKeyYaml('acme', 'admin', adminKey, { permissions: ['events/read', 'suppressions/manage'] }));
const ownListKey = newApiKey();
account.write('own-list.yaml', [signedDomainYaml('ownlist', 'ownlist-example', 'ownlist.example'), apiKeyYaml('ownlist', 'sender', ownListKey),
  'apiVersion: mtrelay.dev/v1alpha1\nkind: AccountSettings\nmetadata: {name: default, namespace: ownlist}\nspec: {listUnsubscribe: false}\n'].join('---\n'));
const state = tempDir('unsubscribe');
const receiver = new WebhookReceiver();
let sink: SmtpSink;
let standalone: MtrelayProcess;
let ports = { submit: 0, api: 0 };

type Event = { type: string; transmission_id: string; rcpt_to: string; user_agent?: string };

function events(): Event[] {
  const log = path.join(state, 'events.jsonl');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event) : [];
}

before(async () => {
  await receiver.listen();
  account.write('webhook.yaml', ['apiVersion: mtrelay.dev/v1alpha1', 'kind: Webhook', 'metadata: {name: unsubscribes, namespace: acme}',
    `spec: {url: "${receiver.url('/hook')}", allowInsecureUrl: true, events: [list_unsubscribe, link_unsubscribe]}`, ''].join('\n'));
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
    '--tracker-port', '0', '--api-port', '0', '--batch-linger', '200ms', '--route', `recipient.test=127.0.0.1:${sink.port}`]);
  const ready = await standalone.started('standalone listening');
  ports = { submit: (ready.ports as { submission: number }).submission, api: ready.apiPort as number };
});
after(async () => {
  await standalone?.stop();
  await sink?.close();
  await receiver.close();
});

async function send(to: string, transactional = false, as = { key: sendKey, from: 'News <news@example.com>' }): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: ports.submit, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: as.key } });
  try {
    const info = await transport.sendMail({ from: as.from, to, subject: 'This week', text: 'News.',
      headers: { 'X-MT-ATTR': JSON.stringify({ campaign_id: 'weekly', ...(transactional ? { optionsAttributes: { transactional: true } } : {}) }) } });
    return /OK (\d+)$/.exec(info.response)![1]!;
  } finally {
    transport.close();
  }
}

const outcome = (id: string) => eventually(`the outcome of ${id}`, () => events().find((e) => e.transmission_id === id && e.type !== 'injection')?.type);

/** The List-Unsubscribe URL of the copy `to` received. */
async function unsubscribeUrl(to: string): Promise<string> {
  const [copy] = await sink.waitFor(to);
  const headers = copy!.message.toString().split('\r\n\r\n')[0]!;
  assert.match(headers, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
  return /^List-Unsubscribe: <(http:\/\/127\.0\.0\.1:\d+\/u\/[A-Za-z0-9_.-]+)>$/m.exec(headers)![1]!;
}

test('a reader unsubscribes on the page in Chromium, a provider with one click; both hold back bulk mail but not receipts', async () => {
  const first = await send('reader1@recipient.test');
  const second = await send('reader2@recipient.test');
  const [pageUrl, oneClickUrl] = [await unsubscribeUrl('reader1@recipient.test'), await unsubscribeUrl('reader2@recipient.test')];

  await withBrowser(async (browser) => {
    const page = await browser.newPage();
    await page.goto(pageUrl);
    assert.equal(await page.textContent('#address'), 'reader1@recipient.test');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(events().filter((e) => e.type.endsWith('unsubscribe')), [], 'opening the link changes nothing');
    await Promise.all([page.waitForURL(pageUrl, { waitUntil: 'load' }), page.click('#unsubscribe')]);
    await page.waitForSelector('#done');
    assert.equal(await page.textContent('#done'), 'You are unsubscribed');
  });
  const clicked = await eventually('the link_unsubscribe event', () => events().find((e) => e.type === 'link_unsubscribe'));
  assert.deepEqual([clicked.transmission_id, clicked.rcpt_to], [first, 'reader1@recipient.test']);
  assert.match(clicked.user_agent ?? '', /Chrome/);

  // What Gmail's and Yahoo's unsubscribe buttons send.
  const posted = await fetch(oneClickUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
  assert.equal(posted.status, 200);
  const listed = await eventually('the list_unsubscribe event', () => events().find((e) => e.type === 'list_unsubscribe'));
  assert.deepEqual([listed.transmission_id, listed.rcpt_to], [second, 'reader2@recipient.test']);

  const suppressed = await fetch(`http://127.0.0.1:${ports.api}/api/v1/suppression-list/reader1@recipient.test`, { headers: { authorization: adminKey } });
  const entries = (await suppressed.json() as { results: { type: string; source: string }[] }).results;
  assert.deepEqual(entries.map((e) => [e.type, e.source]), [['non_transactional', 'unsubscribe']]);
  const trace = await fetch(`http://127.0.0.1:${ports.api}/api/v1/events/trace/${second}`, { headers: { authorization: adminKey } });
  assert.equal((await trace.json() as { results: { recipients: { status: string }[] } }).results.recipients[0]!.status, 'unsubscribed');

  for (const reader of ['reader1@recipient.test', 'reader2@recipient.test']) {
    assert.equal(await outcome(await send(reader)), 'policy_rejection', `${reader}: bulk mail is held back`);
    assert.equal(await outcome(await send(reader, true)), 'delivery', `${reader}: a receipt still arrives`);
  }
  await receiver.waitFor((r) => r.events().length === 2);
  assert.deepEqual(receiver.accepted().flatMap((b) => b.events.map((e) => Object.keys(e.msys)[0])), ['unsubscribe_event', 'unsubscribe_event']);
});

test('an account whose AccountSettings say listUnsubscribe: false gets no List-Unsubscribe on its mail', async () => {
  const id = await send('own-reader@recipient.test', false, { key: ownListKey, from: 'News <news@ownlist.example>' });
  assert.equal(await outcome(id), 'delivery');
  const [copy] = await sink.waitFor('own-reader@recipient.test');
  assert.doesNotMatch(copy!.message.toString().split('\r\n\r\n')[0]!, /^List-Unsubscribe/im);
});
