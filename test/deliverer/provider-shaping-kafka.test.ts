// Backing off a provider is shared by the deliverers of a fleet, through the usage topic of the
// real broker: two deliverers of one consumer group see the provider's MX host through different
// DNS servers, so only A reaches the sink that throttles (B's answers everything). B still backs
// the provider off, having seen no throttling reply itself; and a third deliverer started
// afterwards replays the history and starts backed off as well.
// @needs kafka processes
// @limit 120s
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { TestDnsServer } from '../helpers/dns-server.ts';
import { testKafka } from '../helpers/env.ts';
import { eventually } from '../helpers/eventually.ts';
import { sharedPort } from '../helpers/ports.ts';
import { DelivererProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';

const MESSAGES = 60;
const prefix = `shaping${Date.now()}`;
const key = newApiKey();
const account = accountFolder(key);
const dir = tempDir('provider-shaping-kafka');
const dnsA = new TestDnsServer();
const dnsB = new TestDnsServer();
let throttling: SmtpSink;
let relaxed: SmtpSink;
let relay: RelayProcess;
const deliverers: DelivererProcess[] = [];
let lateArgs: string[] = [];

const factorOf = (d: DelivererProcess) => d.metric('mtrelay_deliverer_provider_rate_factor', { provider: 'throttler' });

before(async () => {
  const port = await sharedPort(['127.0.83.1', '127.0.83.2']);
  throttling = new SmtpSink({ host: '127.0.83.1', port, throttlePerSecond: 5 });
  relaxed = new SmtpSink({ host: '127.0.83.2', port });
  await Promise.all([throttling.listen(), relaxed.listen()]);
  for (const [dns, address] of [[dnsA, '127.0.83.1'], [dnsB, '127.0.83.2']] as const) {
    dns.set('throttle.test', { MX: [{ exchange: 'mx1.throttle.test', priority: 10 }] });
    dns.set('mx1.throttle.test', { A: [address] });
  }
  const [addressA, addressB] = await Promise.all([dnsA.start(), dnsB.start()]);
  const rules = path.join(dir, 'providers.yaml');
  writeFileSync(rules, 'providers:\n  throttler:\n    mx: ["*.throttle.test"]\n    connections: 4\n    messagesPerSecond: 40\n');
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--allow-auth-without-tls', '--topic-prefix', prefix] });
  const args = (dns: string) => ['--topic-prefix', prefix, '--group-id', `g-${prefix}`, '--dns', dns, '--smtp-port', String(port),
    '--allow-destination', '127.0.83.0/24', '--shaping-rules', rules, '--retry-delays', '1s,2s', '--retry-expiry', '5m'];
  deliverers.push(...await Promise.all([addressA, addressB].map((dns) => DelivererProcess.start({ resources: account.dir, kafka: testKafka(), args: args(dns) }))));
  lateArgs = args(addressB);
});

after(async () => {
  await Promise.all([relay?.stop(), ...deliverers.map((d) => d.stop())]);
  await Promise.all([throttling?.close(), relaxed?.close(), dnsA.stop(), dnsB.stop()]);
});

test('a deliverer that never saw a throttling reply backs off with the one that did, and a later one starts backed off', async (t) => {
  const [a, b] = deliverers as [DelivererProcess, DelivererProcess];
  assert.equal(await factorOf(b), 1);
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, ignoreTLS: true, pool: true, maxConnections: 4, auth: { user: 'smtp_mt_injection', pass: key } });
  try {
    await Promise.all(Array.from({ length: MESSAGES }, (_, i) => transport.sendMail({
      from: 'shop@example.com', to: `r${i}@throttle.test`, subject: `m${i}`, text: 'hello', headers: { 'X-MT-ATTR': '{"optionsAttributes":{"transactional":true}}' },
    })));
  } finally {
    transport.close();
  }
  await eventually('A throttled', async () => (await a.metric('mtrelay_deliverer_throttling_replies_total', { provider: 'throttler' })) > 0, 30_000);
  // Within a step, the settling time and the topic's lag.
  const factorB = await eventually('B backed off', async () => { const f = await factorOf(b); return f < 1 && f; }, 15_000, 250);
  assert.equal(await b.metric('mtrelay_deliverer_throttling_replies_total', { provider: 'throttler' }), 0, 'B saw no throttling reply itself');
  t.diagnostic(`A: ${await factorOf(a)}, B: ${factorB}`);
  await eventually('every message delivered', () => new Set([...throttling.received, ...relaxed.received].map((r) => r.rcptTo[0])).size === MESSAGES, 90_000, 500);

  // A deliverer that joins the group now (nothing left to deliver) reads the history from the usage topic.
  const late = await DelivererProcess.start({ resources: account.dir, kafka: testKafka(), args: lateArgs });
  deliverers.push(late);
  assert.ok(await factorOf(late) < 1, 'started backed off');
});
