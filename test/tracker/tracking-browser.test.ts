// Open and click tracking as a reader meets it, through `mtrelay standalone` (relay, deliverer
// and tracker in one process): a real headless Chromium shows the HTML the mailbox received,
// its images fire the open pixels, a click lands on the original page, and each fires its event
// in the event log with the recipient, the transmission and the browser's user agent; the
// account's webhook receives them, signed.
// @needs processes chromium dkimpy
// @limit 60s
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { clickLink, DESKTOP_CHROME_AGENT, openHtml, withBrowser } from '../helpers/browser.ts';
import { mimeParts } from '../helpers/mime-parts.ts';
import { sharedPort } from '../helpers/ports.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { verifySignature } from '../../dispatcher/signature.ts';

const key = newApiKey();
const account = accountFolder(key);
account.write('settings.yaml', 'apiVersion: mtrelay.dev/v1alpha1\nkind: AccountSettings\nmetadata: {name: default, namespace: acme}\nspec: {tracking: {opens: true, clicks: true}}\n');
const state = tempDir('tracking-browser');
let standalone: MtrelayProcess;
let submitPort = 0;
let trackerPort = 0;
let sink: SmtpSink;
let landing: Server;
let landingUrl = '';
const receiver = new WebhookReceiver();

type TrackEvent = { type: string; transmission_id: string; rcpt_to: string; user_agent: string; ip_address: string; target_link_url?: string; machine: boolean };

function events(): TrackEvent[] {
  const log = path.join(state, 'events.jsonl');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as TrackEvent) : [];
}

async function waitForEvent(predicate: (e: TrackEvent) => boolean): Promise<TrackEvent> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = events().find(predicate);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no such event; have ${JSON.stringify(events())}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  await receiver.listen();
  account.write('webhook.yaml', ['apiVersion: mtrelay.dev/v1alpha1', 'kind: Webhook', 'metadata: {name: engagement, namespace: acme}',
    `spec: {url: "${receiver.url('/mtrelay')}", allowInsecureUrl: true, events: [open, initial_open, click], signing: {secretRef: {name: engagement-signing}}}`, '---',
    'apiVersion: v1', 'kind: Secret', 'metadata: {name: engagement-signing, namespace: acme}', 'stringData: {secret: whsec-browser}', ''].join('\n'));
  sink = new SmtpSink({ host: '127.0.0.1', port: await sharedPort(['127.0.0.1']) });
  await sink.listen();
  landing = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' }).end(`<html><head><link rel="icon" href="data:,"><title>Landed</title></head><body>${request.url}</body></html>`);
  });
  await new Promise<void>((resolve) => landing.listen(0, '127.0.0.1', resolve));
  landingUrl = `http://127.0.0.1:${(landing.address() as AddressInfo).port}`;
  standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
    '--tracker-port', '0', '--api-port', '0', '--batch-linger', '200ms', '--route', `recipient.test=127.0.0.1:${sink.port}`]);
  const ready = await standalone.started('standalone listening');
  submitPort = (ready.ports as { submission: number }).submission;
  trackerPort = ready.trackerPort as number;
});

after(async () => {
  await standalone?.stop();
  await sink?.close();
  landing?.close();
  await receiver.close();
});

test('a reader opens the message in Chromium: open pixels fire; a click lands on the original page; the events reach the event log and the webhook', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: submitPort, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
  const info = await transport.sendMail({
    from: 'shop@example.com', to: ['reader1@recipient.test', 'reader2@recipient.test'], subject: 'Sale',
    text: 'Sale', html: `<html><body><h1>Sale</h1><p><a id="sale" href="${landingUrl}/sale?from=mail&amp;n=1">See the sale</a></p></body></html>`,
  });
  transport.close();
  const transmissionId = /OK (\d+)$/.exec(info.response)![1]!;
  const [copy] = await sink.waitFor('reader1@recipient.test');
  const html = mimeParts(copy!.message).parts.find((p) => p.type === 'text/html')!.text!;
  assert.match(html, new RegExp(`href="http://127\\.0\\.0\\.1:${trackerPort}/c/`), 'the link goes through the tracker');

  await withBrowser(async (browser) => {
    const page = await openHtml(browser, html, { userAgent: DESKTOP_CHROME_AGENT });
    const open = await waitForEvent((e) => e.type === 'open' && e.transmission_id === transmissionId);
    const initial = await waitForEvent((e) => e.type === 'initial_open' && e.transmission_id === transmissionId);
    for (const event of [open, initial]) {
      assert.equal(event.rcpt_to, 'reader1@recipient.test');
      assert.equal(event.user_agent, DESKTOP_CHROME_AGENT);
      assert.equal(event.ip_address, '127.0.0.1');
      assert.equal(event.machine, false);
    }
    const landed = await clickLink(page, '#sale');
    assert.equal(landed, `${landingUrl}/sale?from=mail&n=1`);
    assert.equal(await page.title(), 'Landed');
    const click = await waitForEvent((e) => e.type === 'click' && e.transmission_id === transmissionId);
    assert.equal(click.rcpt_to, 'reader1@recipient.test');
    assert.equal(click.target_link_url, `${landingUrl}/sale?from=mail&n=1`);
    assert.equal(click.machine, false);
  });
  // Only reader1's copy was opened: nothing for reader2.
  assert.deepEqual(events().filter((e) => e.transmission_id === transmissionId && e.rcpt_to !== 'reader1@recipient.test' && e.type !== 'injection' && e.type !== 'delivery'), []);

  // The account's webhook got the three, signed, as SparkPost track_events.
  await receiver.waitFor((r) => r.events().filter((e) => e.transmission_id === transmissionId).length === 3);
  const hooked = receiver.events().filter((e) => e.transmission_id === transmissionId);
  assert.deepEqual(hooked.map((e) => e.type).sort(), ['click', 'initial_open', 'open']);
  assert.ok(hooked.every((e) => e.rcpt_to === 'reader1@recipient.test' && e.subaccount === 'acme'));
  assert.equal(hooked.find((e) => e.type === 'click')!.target_link_url, `${landingUrl}/sale?from=mail&n=1`);
  for (const batch of receiver.accepted()) {
    assert.ok(verifySignature('whsec-browser', batch.body, String(batch.headers['x-mt-signature'])));
    assert.ok(batch.events.every((e) => Object.keys(e.msys)[0] === 'track_event'), 'only the types the webhook asked for');
  }

  // A link whose token was altered by one character leads nowhere: 404, no redirect, no event.
  const tracked = /href="(http:\/\/127\.0\.0\.1:\d+\/c\/[^"]+)"/.exec(html)![1]!;
  const altered = tracked.slice(0, -1) + (tracked.endsWith('A') ? 'B' : 'A');
  const response = await fetch(altered, { redirect: 'manual' });
  assert.equal(response.status, 404);
  assert.equal(response.headers.get('location'), null);
});
