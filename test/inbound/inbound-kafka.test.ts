// `mtrelay inbound` as a process beside a relay, a deliverer and a dispatcher on the real broker:
// messages go out through the relay to a mailbox with VERP return paths; each report of the
// corpus (test/fixtures/reports), filled in for one of them and sent with swaks to the inbound
// port as the remote server would send it, becomes the right event, bounce class and
// suppression; the deliverer then holds back the suppressed addresses (a complaint only for mail
// not marked transactional); the account's webhook receives the events; and the inbound port
// relays nothing.
// @needs kafka processes swaks
// @limit 150s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { parseTransmissionField } from '../../shared/mail/transmission-field.ts';
import { testKafka } from '../helpers/env.ts';
import { eventually } from '../helpers/eventually.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { DelivererProcess, MtrelayProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { swaks } from '../helpers/swaks.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { freePort } from '../kafka/broker.ts';
import { corpusFiles, expected, filled } from './report-corpus.ts';

const BOUNCE_DOMAIN = 'bounces.example.com';
const FBL_ADDRESS = `fbl+example.com@${BOUNCE_DOMAIN}`;
const prefix = `inb${Date.now()}`;
const topicArgs = ['--topic-prefix', prefix];
const key = newApiKey();
const account = accountFolder(key);
const receiver = new WebhookReceiver();
let sink: SmtpSink;
let relay: RelayProcess;
let deliverer: DelivererProcess;
let inbound: MtrelayProcess;
let dispatcher: MtrelayProcess;
let inboundPort = 0;
let events: KafkaReader;
let suppressions: KafkaReader;

async function role(args: string[], started: string): Promise<MtrelayProcess> {
  const process = new MtrelayProcess([...args, '--kafka', testKafka(), ...topicArgs, '--metrics-host', '127.0.0.1', '--metrics-port', '0']);
  const ready = await process.started(started);
  process.metricsPort = ready.metricsPort as number;
  if (typeof ready.port === 'number') inboundPort = ready.port;
  await process.waitUntilReady();
  return process;
}

before(async () => {
  await receiver.listen();
  account.write('webhook.yaml', [
    'apiVersion: mtrelay.dev/v1alpha1', 'kind: Webhook', 'metadata: {name: reports, namespace: acme}',
    `spec: {url: "${receiver.url('/events')}", allowInsecureUrl: true, events: [out_of_band, spam_complaint], signing: {secretRef: {name: reports-signing}}}`, '---',
    'apiVersion: v1', 'kind: Secret', 'metadata: {name: reports-signing, namespace: acme}', 'stringData: {secret: whsec-reports}', '',
  ].join('\n'));
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--allow-auth-without-tls', ...topicArgs] });
  deliverer = await DelivererProcess.start({ resources: account.dir, kafka: testKafka(), args: [...topicArgs, '--route', `*=127.0.0.1:${sink.port}`, '--bounce-domain', BOUNCE_DOMAIN] });
  [inbound, dispatcher, events, suppressions] = await Promise.all([
    role(['inbound', '--bounce-domain', BOUNCE_DOMAIN, '--host', '127.0.0.1', '--port', '0', '--hostname', `mx.${BOUNCE_DOMAIN}`], 'inbound listening'),
    role(['dispatcher', '--webhook-allow-private', '--resources', account.dir, '--group-id', `g-${prefix}`, '--batch-linger', '200ms'], 'dispatcher running'),
    KafkaReader.start(testKafka(), `${prefix}.events`, false),
    KafkaReader.start(testKafka(), `${prefix}.suppressions`, false),
  ]);
});
after(async () => {
  await Promise.all([relay?.stop(), deliverer?.stop(), inbound?.stop(), dispatcher?.stop(), events?.stop(), suppressions?.stop()]);
  await Promise.all([sink?.close(), receiver.close()]);
});

const transport = () => nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });

/** Sends one message through the relay; resolves with its transmission id once the mailbox has it, with the return path it came with. */
async function sendThrough(to: string, headers: Record<string, string> = {}): Promise<{ transmissionId: string; returnPath: string; copy: string }> {
  const info = await transport().sendMail({ from: 'Shop <app@example.com>', to, subject: 'Your order', text: 'Thank you.', headers });
  const transmissionId = /^250 2\.0\.0 OK (\d+)$/.exec(info.response)![1]!;
  const [copy] = await sink.waitFor(to, 1);
  return { transmissionId, returnPath: copy!.mailFrom, copy: copy!.message.toString() };
}

type Event = Record<string, unknown> & { type: string; transmission_id: string; rcpt_to: string };
const eventsOf = (type: string) => events.records.map((r) => JSON.parse(r.value.toString()) as Event).filter((e) => e.type === type);

const sent = new Map<string, { transmissionId: string; rcpt: string }>();

test('every report of the corpus, sent with swaks to the inbound port, becomes the right event, bounce class and suppression', async () => {
  for (const [i, file] of corpusFiles.entries()) {
    const rcpt = `rcpt${i}.${file.replace(/\W+/g, '-').slice(0, 20)}@recipient.test`;
    const { transmissionId, returnPath, copy } = await sendThrough(rcpt);
    assert.equal(returnPath, `b+${transmissionId}+${rcpt.split('@')[0]}=recipient.test@${BOUNCE_DOMAIN}`, 'the VERP return path');
    assert.deepEqual(parseTransmissionField(/^X-MT-Transmission: (.*)$/m.exec(copy)?.[1] ?? ''), { transmissionId, namespace: 'acme' }, 'the copy names its transmission');
    sent.set(file, { transmissionId, rcpt });
    const to = expected[file]!.type === 'spam_complaint' ? FBL_ADDRESS : returnPath;
    const report = filled(file, { bounceAddress: returnPath, fblAddress: FBL_ADDRESS, transmissionId, namespace: 'acme', rcpt });
    const result = await swaks(['--server', `127.0.0.1:${inboundPort}`, '--from', '<>', '--to', to, '--data', '-'], report.toString('latin1'));
    assert.equal(result.dataReply, `250 2.0.0 Report accepted (${expected[file]!.result})`, `${file}: ${result.output.slice(-400)}`);
  }
  for (const file of corpusFiles) {
    const want = expected[file]!;
    const { transmissionId, rcpt } = sent.get(file)!;
    const found = (type: string) => eventsOf(type).filter((e) => e.transmission_id === transmissionId);
    if (!want.type) {
      assert.deepEqual([...found('out_of_band'), ...found('spam_complaint')], [], `${file}: no event`);
      continue;
    }
    const [event] = await eventually(`${file}: its ${want.type} event`, () => (found(want.type!).length ? found(want.type!) : undefined));
    assert.equal(event!.rcpt_to, rcpt);
    assert.equal(event!.namespace, 'acme');
    if (want.bounce_class) assert.equal(event!.bounce_class, want.bounce_class, `${file}: ${String(event!.raw_reason)}`);
    if (want.fbtype) assert.deepEqual([event!.fbtype, event!.report_to], [want.fbtype, FBL_ADDRESS]);
    const entries = suppressions.records.map((r) => ({ key: r.key, entry: JSON.parse(r.value.toString()) as { address: string; type?: string; source: string } }))
      .filter((s) => s.entry.address === rcpt);
    const expectedKey = want.suppressed === 'non_transactional' ? `acme/${rcpt}#non_transactional` : `acme/${rcpt}`;
    assert.deepEqual(entries.map((s) => s.key), want.suppressed ? [expectedKey] : [], `${file}: suppression`);
  }
  assert.equal(await inbound.metric('mtrelay_inbound_reports_total', { kind: 'dsn', result: 'bounce' }), 7);
  assert.equal(await inbound.metric('mtrelay_inbound_reports_total', { kind: 'arf', result: 'complaint' }), 2);
  // The complaint rate's numerator, by the complained-of message's account and sending domain.
  assert.equal(await inbound.metric('mtrelay_inbound_complaints_total', { account: 'acme', sending_domain: 'example.com' }), 2);
});

test('the deliverer holds back what the reports suppressed: a hard bounce for all mail, a complaint for mail not marked transactional', async () => {
  const bounced = sent.get('gmail-no-such-account.eml')!.rcpt;
  const complained = sent.get('arf-rfc5965-abuse.eml')!.rcpt;
  const full = sent.get('postfix-mailbox-full.eml')!.rcpt;
  const rejected = async (rcpt: string, headers: Record<string, string> = {}) => {
    const info = await transport().sendMail({ from: 'app@example.com', to: rcpt, subject: 'again', text: 'again', headers });
    const transmissionId = /OK (\d+)$/.exec(info.response)![1]!;
    return eventually(`the outcome of ${transmissionId}`, () => events.records.map((r) => JSON.parse(r.value.toString()) as Event)
      .find((e) => e.transmission_id === transmissionId && ['policy_rejection', 'delivery'].includes(e.type)))
      .then((e) => e.type);
  };
  // The suppressions topic reaches every deliverer within seconds; until then a message may still go.
  const deadline = Date.now() + 15_000;
  let outcome = await rejected(bounced);
  while (outcome !== 'policy_rejection' && Date.now() < deadline) outcome = await rejected(bounced);
  assert.equal(outcome, 'policy_rejection', 'a hard out-of-band bounce suppresses the address');
  assert.equal(await rejected(complained), 'policy_rejection', 'a complaint holds back bulk mail');
  assert.equal(await rejected(complained, { 'X-MT-ATTR': '{"optionsAttributes":{"transactional":true}}' }), 'delivery', 'transactional mail still reaches who complained');
  assert.equal(await rejected(full), 'delivery', 'a full mailbox is not suppressed');
});

test("the account's webhook receives the out_of_band and spam_complaint events, SparkPost-shaped", async () => {
  await receiver.waitFor((r) => {
    const types = r.batches.flatMap((b) => b.events.map((e) => Object.values(e.msys)[0]?.type));
    return types.filter((t) => t === 'out_of_band').length >= 7 && types.filter((t) => t === 'spam_complaint').length >= 2;
  }, 30_000);
  const all = receiver.batches.flatMap((b) => b.events).filter((e) => Object.keys(e.msys).length); // not the first, empty test batch
  const complaint = all.map((e) => e.msys.message_event).find((e) => e?.type === 'spam_complaint');
  assert.equal(complaint?.subaccount, 'acme');
  assert.ok(all.every((e) => ['out_of_band', 'spam_complaint'].includes(String(Object.values(e.msys)[0]?.type))), 'only the types the webhook asked for');
});

test('the inbound port relays nothing: any other address is refused at RCPT with 550 5.7.1', async () => {
  for (const stranger of ['someone@example.org', `postmaster@${BOUNCE_DOMAIN}`, `b+1@elsewhere.test`]) {
    const result = await swaks(['--server', `127.0.0.1:${inboundPort}`, '--from', 'spammer@example.org', '--to', stranger]);
    assert.ok(result.replies.includes(`550 5.7.1 <${stranger}> is not a bounce or feedback address of this server; it relays nothing`), result.output);
  }
  assert.equal(await inbound.metric('mtrelay_inbound_refused_total', { reason: 'not_ours' }), 3);
});
