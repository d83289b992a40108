// The trace page as a person uses it, in a real headless Chromium, on `mtrelay standalone`:
// a message goes to two readers; one opens it and clicks its link in the browser; then the
// sender opens /trace, types an API key and the transmission id, and sees one timeline per
// recipient (injection, delivery, opens, click) with where each stands. What a message carries
// is shown as text (a subject with markup runs nothing); the key stays out of the URL and a
// reload shows the trace again; a wrong key or one without events/read gets the API's reason.
// @needs processes chromium
// @limit 90s
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import type { Page } from 'playwright-core';
import { clickLink, DESKTOP_CHROME_AGENT, openHtml, withBrowser } from '../helpers/browser.ts';
import { mimeParts } from '../helpers/mime-parts.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { freePort } from '../kafka/broker.ts';

const sendKey = newApiKey();
const readKey = newApiKey();
const manageOnlyKey = newApiKey();
const account = accountFolder(sendKey);
account.write('settings.yaml', 'apiVersion: mtrelay.dev/v1alpha1\nkind: AccountSettings\nmetadata: {name: default, namespace: acme}\nspec: {tracking: {opens: true, clicks: true}}\n');
account.write('reader.yaml', apiKeyYaml('acme', 'reader', readKey, { permissions: ['events/read'] }));
account.write('manager.yaml', apiKeyYaml('acme', 'manager', manageOnlyKey, { permissions: ['suppressions/manage'] }));
const SUBJECT = 'Sale <img src=x onerror="document.title=\'injected\'">';
let sink: SmtpSink;
let standalone: MtrelayProcess;
let landing: Server;
let landingUrl = '';
let ports = { submit: 0, api: 0 };

before(async () => {
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  landing = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' }).end(`<html><head><link rel="icon" href="data:,"><title>Landed</title></head><body>${request.url}</body></html>`);
  });
  await new Promise<void>((resolve) => landing.listen(0, '127.0.0.1', resolve));
  landingUrl = `http://127.0.0.1:${(landing.address() as AddressInfo).port}`;
  standalone = new MtrelayProcess(['standalone', '--state', tempDir('trace-page'), '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
    '--tracker-port', '0', '--api-port', '0', '--route', `recipient.test=127.0.0.1:${sink.port}`]);
  const ready = await standalone.started('standalone listening');
  ports = { submit: (ready.ports as { submission: number }).submission, api: ready.apiPort as number };
});
after(async () => {
  await standalone?.stop();
  await sink?.close();
  landing?.close();
});

/** Types the key and id into the page and shows the trace. */
async function lookUp(page: Page, key: string, transmissionId: string): Promise<void> {
  await page.fill('#key', key);
  await page.fill('#transmission', transmissionId);
  await page.click('button[type=submit]');
  await page.waitForFunction(() => !document.getElementById('trace')!.hasAttribute('aria-busy') && (document.getElementById('trace')!.children.length > 0 || document.getElementById('error')!.textContent !== ''));
}

/** Each recipient's status and step types as the page shows them. */
function shown(page: Page) {
  return page.$$eval('section.recipient', (sections) => sections.map((s) => ({
    rcpt: (s as HTMLElement).dataset.rcpt, status: s.querySelector('.status')!.textContent,
    steps: [...s.querySelectorAll('li')].map((li) => (li as HTMLElement).dataset.type),
  })));
}

test('a sender finds what happened to each recipient on the trace page: delivered, opened, clicked', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: ports.submit, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: sendKey } });
  const info = await transport.sendMail({
    from: 'Shop <shop@example.com>', to: ['reader1@recipient.test', 'reader2@recipient.test'], subject: SUBJECT,
    text: 'Sale', html: `<html><body><h1>Sale</h1><p><a id="sale" href="${landingUrl}/sale">See the sale</a></p></body></html>`,
  });
  transport.close();
  const transmissionId = /OK (\d+)$/.exec(info.response)![1]!;
  const [copy] = await sink.waitFor('reader1@recipient.test');
  const html = mimeParts(copy!.message).parts.find((p) => p.type === 'text/html')!.text!;

  await withBrowser(async (browser) => {
    const mail = await openHtml(browser, html, { userAgent: DESKTOP_CHROME_AGENT });
    assert.equal(await clickLink(mail, '#sale'), `${landingUrl}/sale`);

    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${ports.api}/trace`);
    assert.equal(await page.title(), 'Message trace · mtrelay');
    const want = [
      { rcpt: 'reader1@recipient.test', status: 'delivered', steps: ['injection', 'delivery', 'initial_open|open', 'initial_open|open', 'click'] },
      { rcpt: 'reader2@recipient.test', status: 'delivered', steps: ['injection', 'delivery'] },
    ];
    // The opens and the click are indexed as the tracker logs them: look again until they are there.
    const deadline = Date.now() + 15_000;
    let got = [];
    do {
      await lookUp(page, readKey, transmissionId);
      got = await shown(page);
      // The two open pixels fire in either order; the page keeps the order they happened in.
      for (const r of got) r.steps = r.steps.map((t) => (t === 'open' || t === 'initial_open' ? 'initial_open|open' : t));
    } while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < deadline);
    assert.deepEqual(got, want);
    assert.equal(await page.locator('section[data-rcpt="reader1@recipient.test"] li[data-type=initial_open]').count(), 1);
    assert.equal(await page.textContent('h1'), `Transmission ${transmissionId}`);
    assert.equal(await page.textContent('.summary'), `“${SUBJECT}” from Shop <shop@example.com>`, 'the subject is shown as text');
    assert.equal(await page.title(), 'Message trace · mtrelay', 'markup in the subject ran nothing');
    assert.equal(await page.locator('#trace img').count(), 0);
    const click = await page.textContent('section[data-rcpt="reader1@recipient.test"] li[data-type=click] .detail');
    assert.equal(click, `clicked ${landingUrl}/sale`);
    assert.match(await page.textContent('section[data-rcpt="reader1@recipient.test"] li[data-type=open] .detail') ?? '', /^opened in Mozilla\/5\.0/);

    assert.equal(page.url(), `http://127.0.0.1:${ports.api}/trace?transmission=${transmissionId}`, 'the key is not in the URL');
    await page.reload();
    await page.waitForSelector('section[data-rcpt="reader2@recipient.test"]');
    assert.equal((await shown(page)).length, 2, 'a reload shows the trace again (the key is kept by the tab)');

    await lookUp(page, 'not-a-key', transmissionId);
    assert.match(await page.textContent('#error') ?? '', /API key/i);
    assert.equal(await page.locator('section.recipient').count(), 0, 'nothing of the trace stays after a refusal');
    await lookUp(page, manageOnlyKey, transmissionId);
    assert.match(await page.textContent('#error') ?? '', /events\/read/);
  });
});
