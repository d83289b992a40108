// The broker goes away mid-run: clients get 451 4.3.0, never a 250 for a message that is
// not in Kafka; when the broker is back the same relay process sends again.
// @needs kafka-own processes
// @limit 90s
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { KafkaBroker, repoRoot } from '../kafka/broker.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';

const key = newApiKey();
const account = accountFolder(key);
const dir = mkdtempSync(path.join(repoRoot, '.cache', 'test-runs', 'outage-'));
const broker = new KafkaBroker({ dir });
let relay: RelayProcess;

before(async () => {
  await broker.start();
  relay = await RelayProcess.start({ resources: account.dir, kafka: broker.bootstrap, args: ['--allow-auth-without-tls', '--kafka-timeout', '3000'] });
});
after(async () => {
  await relay?.stop();
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('broker killed and restarted mid-run: 451 while it is away, every 250 is in Kafka', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, secure: false, ignoreTLS: true,
    auth: { user: 'smtp_mt_injection', pass: key }, connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 });
  const accepted: string[] = [];
  const deferred: string[] = [];
  const send = async (i: number) => {
    try {
      const info = await transport.sendMail({ from: 'sender@example.com', to: 'x@recipient.test', subject: `outage ${i}`, text: `message ${i}` });
      const id = /^250 2\.0\.0 OK (\d+)$/.exec(info.response)?.[1];
      assert.ok(id, info.response);
      accepted.push(id);
    } catch (error) {
      const response = (error as { response?: string }).response ?? String(error);
      assert.match(response, /^451 4\.3\.0 /, `a failure must be 451 4.3.0, got ${response}`);
      deferred.push(response);
    }
  };
  for (let i = 0; i < 5; i++) await send(i);
  assert.equal(accepted.length, 5);

  await broker.stop('SIGKILL');
  const outageStarted = Date.now();
  for (let i = 5; i < 10; i++) await send(i);
  assert.equal(accepted.length, 5, 'no 250 while the broker is down');
  assert.ok(deferred.length >= 5);
  assert.ok(Date.now() - outageStarted < 5 * 10_000, 'each 451 came well within a client\'s patience');
  assert.equal((await relay.http('/readyz')).status, 503);

  await broker.start();
  const deadline = Date.now() + 60_000;
  let i = 10;
  while (accepted.length < 10) {
    assert.ok(Date.now() < deadline, 'the relay did not send again within 60 s of the broker\'s return');
    await send(i++);
  }
  transport.close();
  await relay.waitUntilReady();

  const reader = await KafkaReader.start(broker.bootstrap);
  try {
    for (const id of accepted) await reader.waitFor(id, 30_000);
  } finally {
    await reader.stop();
  }
  assert.ok(await relay.metric('mtrelay_relay_replies_total', { code: '451' }) >= 5);
});
