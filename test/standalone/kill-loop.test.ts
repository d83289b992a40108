// Standalone killed with kill -9 again and again under steady load, and started again on its
// state each time: every message answered 250 reaches the mailbox (duplicates allowed, counted).
// @needs processes
// @limit 120s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { steadyLoad, tally } from '../helpers/steady-load.ts';
import { freePort } from '../kafka/broker.ts';

const key = newApiKey();
const account = accountFolder(key);
const state = tempDir('kill-loop-state');
let sink: SmtpSink;
let standalone: MtrelayProcess;
let port = 0;

async function start(): Promise<void> {
  standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', String(port), '--alt-port', '-1', '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
    '--route', `*=127.0.0.1:${sink.port}`, '--tls-policy', '*=opportunistic', '--retry-delays', '1s']);
  await standalone.started('standalone listening');
}

before(async () => {
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  port = await freePort();
  await start();
});
after(async () => {
  await standalone?.stop();
  await sink?.close();
});

test('kill -9 five times under steady load: every 250 is delivered after the restarts', async (t) => {
  const load = steadyLoad(() => port, key, 80, 4);
  try {
    for (let kill = 0; kill < 5; kill++) {
      await new Promise((r) => setTimeout(r, 3000 + kill * 700)); // a different moment of the work each time
      await standalone.stop('SIGKILL');
      await start();
    }
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    await load.stop();
  }
  const { accepted, delivered, lost, duplicates } = await tally(sink, load.sent, 60_000);
  t.diagnostic(`sent ${load.sent.length}, accepted ${accepted.length}, delivered ${delivered}, duplicates ${duplicates}, lost ${lost.length}`);
  assert.deepEqual(lost.map((s) => s.messageId), [], 'a message answered 250 never arrived');
  assert.ok(accepted.length > 500, `only ${accepted.length} accepted`);
});
