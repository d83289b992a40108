// Standalone's inbound listener: a bounce and a complaint sent with swaks to its port become
// out_of_band and spam_complaint events in the event log; the addresses are held back at once
// (the complaint only for mail not marked transactional) and still after kill -9 and a
// restart, from the SQLite queue; its API lists them, and removing one there lets mail through.
// A mail client's unsubscribe by mail (List-Unsubscribe's mailto, sent with swaks as written)
// unsubscribes the recipient; a made-up token changes nothing.
// @needs processes swaks
// @limit 90s
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { swaks } from '../helpers/swaks.ts';
import { freePort } from '../kafka/broker.ts';
import { filled } from './report-corpus.ts';

const BOUNCE_DOMAIN = 'bounces.example.com';
const FBL_ADDRESS = `fbl@${BOUNCE_DOMAIN}`;
const state = tempDir('inbound-standalone');
const key = newApiKey();
const account = accountFolder(key);
let sink: SmtpSink;
let standalone: MtrelayProcess;
let ports = { submit: 0, inbound: 0, api: 0 };
const manageKey = newApiKey();
account.write('manage.yaml', apiKeyYaml('acme', 'manage', manageKey, { permissions: ['suppressions/manage'] }));

async function start(): Promise<void> {
  standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '0', '--inbound-port', '0',
    '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--route', `*=127.0.0.1:${sink.port}`, '--bounce-domain', BOUNCE_DOMAIN]);
  const ready = await standalone.started('standalone listening');
  ports = { submit: (ready.ports as { submission: number }).submission, inbound: ready.inboundPort as number, api: ready.apiPort as number };
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

type Event = Record<string, unknown> & { type: string; transmission_id: string };
function events(): Event[] {
  const log = path.join(state, 'events.jsonl');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event) : [];
}

async function outcome(to: string, headers: Record<string, string> = {}): Promise<{ transmissionId: string; type: string; returnPath?: string }> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: ports.submit, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
  const info = await transport.sendMail({ from: 'Shop <app@example.com>', to, subject: 'Your order', text: 'Thank you.', headers });
  const transmissionId = /OK (\d+)$/.exec(info.response)![1]!;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = events().find((e) => e.transmission_id === transmissionId && ['delivery', 'policy_rejection'].includes(e.type));
    if (found) return { transmissionId, type: found.type, returnPath: sink.received.find((r) => r.message.includes(`X-MT-Transmission: ${transmissionId};`))?.mailFrom };
    if (Date.now() > deadline) throw new Error(`no outcome for ${transmissionId}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function report(file: string, to: string, fill: { transmissionId: string; rcpt: string; bounceAddress: string }): Promise<string | undefined> {
  const raw = filled(file, { ...fill, fblAddress: FBL_ADDRESS, namespace: 'acme' });
  return (await swaks(['--server', `127.0.0.1:${ports.inbound}`, '--from', '<>', '--to', to, '--data', '-'], raw.toString('latin1'))).dataReply;
}

test('a later bounce and a complaint become events in the log, and the addresses are held back at once and after kill -9', async () => {
  const first = await outcome('gone@recipient.test');
  assert.equal(first.type, 'delivery');
  assert.equal(await report('outlook-mailbox-unavailable.eml', first.returnPath!, { transmissionId: first.transmissionId, rcpt: 'gone@recipient.test', bounceAddress: first.returnPath! }),
    '250 2.0.0 Report accepted (bounce)');
  const complainer = await outcome('annoyed@recipient.test');
  assert.equal(await report('arf-rfc5965-abuse.eml', FBL_ADDRESS, { transmissionId: complainer.transmissionId, rcpt: 'annoyed@recipient.test', bounceAddress: complainer.returnPath! }),
    '250 2.0.0 Report accepted (complaint)');
  const oob = events().find((e) => e.type === 'out_of_band' && e.transmission_id === first.transmissionId);
  assert.deepEqual([oob?.rcpt_to, oob?.bounce_class, oob?.namespace], ['gone@recipient.test', 10, 'acme']);
  assert.equal(events().find((e) => e.type === 'spam_complaint')?.transmission_id, complainer.transmissionId);

  const heldBack = async () => [
    (await outcome('gone@recipient.test')).type,
    (await outcome('annoyed@recipient.test')).type,
    (await outcome('annoyed@recipient.test', { 'X-MT-ATTR': '{"optionsAttributes":{"transactional":true}}' })).type,
  ];
  assert.deepEqual(await heldBack(), ['policy_rejection', 'policy_rejection', 'delivery']);
  await standalone.stop('SIGKILL');
  await start();
  assert.deepEqual(await heldBack(), ['policy_rejection', 'policy_rejection', 'delivery'], 'the suppressions outlive the process');
});

test("List-Unsubscribe's mailto: a mail to it, as a mail client sends it, unsubscribes the recipient from bulk mail", async () => {
  const sent = await outcome('leaving@recipient.test');
  const copy = sink.received.find((r) => r.message.includes(`X-MT-Transmission: ${sent.transmissionId};`))!.message.toString();
  const mailto = /^List-Unsubscribe: <https?:[^>]+>,\r\n <mailto:(unsubscribe@bounces\.example\.com)\?subject=([A-Za-z0-9_.-]+)>$/m.exec(copy);
  assert.ok(mailto, copy.split('\r\n\r\n')[0]);
  const [, address, token] = mailto;
  const forged = await swaks(['--server', `127.0.0.1:${ports.inbound}`, '--from', 'leaving@recipient.test', '--to', address!, '--header', `Subject: ${token!.slice(0, -2)}xx`, '--body', 'unsubscribe']);
  assert.equal(forged.dataReply, '250 2.0.0 Report accepted (unmatched)', 'an altered token is taken and does nothing');
  // Mail clients may prefix the subject.
  const result = await swaks(['--server', `127.0.0.1:${ports.inbound}`, '--from', 'leaving@recipient.test', '--to', address!, '--header', `Subject: Re: ${token!}`, '--body', 'This message was automatically generated by Gmail.']);
  assert.equal(result.dataReply, '250 2.0.0 Report accepted (unsubscribe)', result.output.slice(-400));
  const event = events().find((e) => e.type === 'list_unsubscribe');
  assert.deepEqual([event?.transmission_id, event?.rcpt_to, event?.namespace, event?.ip_address], [sent.transmissionId, 'leaving@recipient.test', 'acme', '127.0.0.1']);
  assert.equal((await outcome('leaving@recipient.test')).type, 'policy_rejection', 'bulk mail is held back');
  assert.equal((await outcome('leaving@recipient.test', { 'X-MT-ATTR': '{"optionsAttributes":{"transactional":true}}' })).type, 'delivery', 'a receipt still arrives');
});

test("standalone's inbound port relays nothing either", async () => {
  const result = await swaks(['--server', `127.0.0.1:${ports.inbound}`, '--from', 'spammer@example.org', '--to', 'someone@example.org']);
  assert.ok(result.replies.includes('550 5.7.1 <someone@example.org> is not a bounce or feedback address of this server; it relays nothing'), result.output);
});

test("standalone's API lists what the reports suppressed, and a removal there lets mail through at once and after a restart", async () => {
  const api = (method: string, path = '') => fetch(`http://127.0.0.1:${ports.api}/api/v1/suppression-list${path}`, { method, headers: { authorization: manageKey } });
  const listed = await (await api('GET')).json() as { results: { recipient: string; type: string; source: string }[] };
  assert.deepEqual(listed.results.map((e) => [e.recipient, e.type, e.source]), [['annoyed@recipient.test', 'non_transactional', 'complaint'], ['gone@recipient.test', 'all', 'bounce'], ['leaving@recipient.test', 'non_transactional', 'unsubscribe']]);
  assert.equal((await api('DELETE', '/gone@recipient.test')).status, 204);
  assert.equal((await outcome('gone@recipient.test')).type, 'delivery');
  await standalone.stop('SIGKILL');
  await start();
  assert.equal((await outcome('gone@recipient.test')).type, 'delivery', 'the removal is committed');
  assert.equal((await outcome('annoyed@recipient.test')).type, 'policy_rejection');
});
