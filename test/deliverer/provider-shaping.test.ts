// Per-provider shaping through `mtrelay standalone`: a provider of the rules file (its MX hosts
// by pattern) is served by a sink that answers like a provider under pressure (421 4.7.28 beyond
// its rate). The deliverer backs that provider off, every message still arrives once, and the
// throttling replies stay well below the number of messages (no retry storm); a host of no
// provider keeps the per-destination limits.
// @needs processes
// @limit 120s
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { TestDnsServer } from '../helpers/dns-server.ts';
import { eventually } from '../helpers/eventually.ts';
import { sharedPort } from '../helpers/ports.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';

const MESSAGES = 120;
const SINK_RATE = 8;
const key = newApiKey();
const account = accountFolder(key);
const dns = new TestDnsServer();
const state = tempDir('provider-shaping');
let throttling: SmtpSink;
let standalone: MtrelayProcess;
let submitPort = 0;

before(async () => {
  const port = await sharedPort(['127.0.82.1']);
  throttling = new SmtpSink({ host: '127.0.82.1', port, throttlePerSecond: SINK_RATE });
  await throttling.listen();
  dns.set('throttle.test', { MX: [{ exchange: 'mx1.throttle.test', priority: 10 }] });
  dns.set('mx1.throttle.test', { A: ['127.0.82.1'] });
  const dnsAddress = await dns.start();
  const rules = path.join(state, 'providers.yaml');
  writeFileSync(rules, 'providers:\n  throttler:\n    mx: ["*.throttle.test"]\n    connections: 4\n    messagesPerConnection: 20\n    messagesPerSecond: 20\n');
  standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '-1', '--inbound-port', '-1', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
    '--dns', dnsAddress, '--smtp-port', String(port), '--allow-destination', '127.0.82.0/24', '--shaping-rules', rules,
    '--retry-delays', '1s,2s,4s', '--retry-expiry', '5m', '--connect-timeout', '2s']);
  const ready = await standalone.started('standalone listening');
  submitPort = (ready.ports as { submission: number }).submission;
  standalone.metricsPort = ready.metricsPort as number;
});

after(async () => {
  await standalone?.stop();
  await Promise.all([throttling?.close(), dns.stop()]);
});

test('a provider that throttles is backed off: every message arrives once, without a retry storm', async (t) => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: submitPort, ignoreTLS: true, pool: true, maxConnections: 5, auth: { user: 'smtp_mt_injection', pass: key } });
  try {
    await Promise.all(Array.from({ length: MESSAGES }, (_, i) => transport.sendMail({
      from: 'shop@example.com', to: `r${i}@throttle.test`, subject: `m${i}`, text: 'hello', headers: { 'X-MT-ATTR': '{"optionsAttributes":{"transactional":true}}' },
    })));
  } finally {
    transport.close();
  }
  await throttling.waitFor('r0@throttle.test');
  await eventually('every message delivered', () => new Set(throttling.received.map((r) => r.rcptTo[0])).size === MESSAGES, 100_000, 500);
  assert.equal(throttling.received.length, MESSAGES, 'each message once');
  const replies = await standalone.metric('mtrelay_deliverer_throttling_replies_total', { provider: 'throttler' });
  assert.ok(throttling.throttled > 0, 'the sink did throttle');
  assert.equal(replies, throttling.throttled, 'every throttling reply was seen');
  assert.ok(throttling.throttled < MESSAGES / 2, `${throttling.throttled} throttling replies for ${MESSAGES} messages`);
  const factor = await standalone.metric('mtrelay_deliverer_provider_rate_factor', { provider: 'throttler' });
  assert.ok(factor < 1, `backed off (factor ${factor})`);
  t.diagnostic(`${throttling.throttled} throttling replies for ${MESSAGES} messages; factor ${factor} at the end`);
  assert.equal(await standalone.metric('mtrelay_deliverer_provider_rate_factor', { provider: 'gmail' }), 1, 'other providers untouched');
});
