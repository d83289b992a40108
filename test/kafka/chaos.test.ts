// Chaos on the production shape: a three-node KRaft cluster (replication factor 3,
// min.insync.replicas 2), a relay and a deliverer, and a client sending steadily. In turn: one
// broker killed (-9) and started again, two brokers killed (no 250 is possible: a message must be
// on two replicas), then the relay and the deliverer killed and started again. Every message
// answered 250 must reach the mailbox; duplicates are allowed and counted. Then, three times, a
// broker, the relay and the deliverer are killed together and started again.
// @needs kafka-own processes
// @limit 420s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DelivererProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { steadyLoad, tally } from '../helpers/steady-load.ts';
import { freePort } from './broker.ts';
import { KafkaCluster } from './kafka-cluster.ts';

const key = newApiKey();
const account = accountFolder(key);
const prefix = `chaos${Date.now()}`;
let cluster: KafkaCluster;
let sink: SmtpSink;
let relay: RelayProcess;
let deliverer: DelivererProcess;
let smtpPort = 0;

const relayArgs = () => ['--allow-auth-without-tls', '--port', String(smtpPort), '--topic-prefix', prefix, '--replication-factor', '3', '--kafka-timeout', '5000'];
const delivererArgs = () => ['--topic-prefix', prefix, '--replication-factor', '3', '--group-id', `g-${prefix}`, '--route', `*=127.0.0.1:${sink.port}`,
  '--tls-policy', '*=opportunistic', '--retry-delays', '2s'];

before(async () => {
  cluster = await KafkaCluster.start(tempDir('kafka-cluster'));
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  smtpPort = await freePort();
  relay = await RelayProcess.start({ resources: account.dir, kafka: cluster.bootstrap, args: relayArgs() });
  deliverer = await DelivererProcess.start({ resources: account.dir, kafka: cluster.bootstrap, args: delivererArgs() });
});
after(async () => {
  await Promise.all([relay?.stop(), deliverer?.stop()]);
  await sink?.close();
  await cluster?.stop();
});

const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

test('brokers, relay and deliverer killed in turn, then together in a loop, under steady load: every 250 is delivered, no 250 without two replicas', async (t) => {
  const load = steadyLoad(() => smtpPort, key, 60, 6);
  const start = Date.now();
  const at = (s: number) => sleepUntil(start + s * 1000);
  const timeline: string[] = [];
  const mark = (what: string) => timeline.push(`${((Date.now() - start) / 1000).toFixed(1)} s ${what}`);
  let doubleOutage = { from: 0, to: 0 };
  try {
    await at(8);
    mark('kill -9 broker 3');
    await cluster.nodes[2]!.stop('SIGKILL');
    await at(16);
    await cluster.restart(2);
    mark('broker 3 back');
    await at(26);
    mark('kill -9 brokers 2 and 3');
    await Promise.all([cluster.nodes[1]!.stop('SIGKILL'), cluster.nodes[2]!.stop('SIGKILL')]);
    doubleOutage = { from: Date.now(), to: 0 };
    // Ten seconds from the kill, whatever the earlier restarts took on a busy machine.
    await sleepUntil(Math.max(start + 36_000, doubleOutage.from + 10_000));
    doubleOutage.to = Date.now();
    await Promise.all([cluster.restart(1), cluster.restart(2)]);
    mark('brokers 2 and 3 back');
    await at(50);
    mark('kill -9 relay');
    await relay.stop('SIGKILL');
    relay = await RelayProcess.start({ resources: account.dir, kafka: cluster.bootstrap, args: relayArgs() });
    mark('relay back');
    await at(60);
    mark('kill -9 deliverer');
    await deliverer.stop('SIGKILL');
    deliverer = await DelivererProcess.start({ resources: account.dir, kafka: cluster.bootstrap, args: delivererArgs() });
    mark('deliverer back');
    // Then all of them at once, in a loop: a broker (each in turn), the relay and the deliverer.
    for (let round = 0; round < 3; round++) {
      await at(72 + round * 14);
      mark(`loop ${round + 1}: kill -9 broker ${round + 1}, relay and deliverer`);
      await Promise.all([cluster.nodes[round]!.stop('SIGKILL'), relay.stop('SIGKILL'), deliverer.stop('SIGKILL')]);
      await cluster.restart(round);
      [relay, deliverer] = await Promise.all([
        RelayProcess.start({ resources: account.dir, kafka: cluster.bootstrap, args: relayArgs() }),
        DelivererProcess.start({ resources: account.dir, kafka: cluster.bootstrap, args: delivererArgs() }),
      ]);
      mark(`loop ${round + 1}: all back`);
    }
    await at(118);
  } finally {
    await load.stop();
    mark('load stopped');
  }

  const { accepted, delivered, lost, duplicates } = await tally(sink, load.sent);
  const refused = load.sent.filter((s) => /^4\d\d /.test(s.reply)).length;
  const failed = load.sent.length - accepted.length - refused;
  // Two brokers down: a message cannot be on two replicas, so none sent then (after a moment for those in flight) may be accepted.
  const duringDouble = load.sent.filter((s) => s.startedAt >= doubleOutage.from + 2000 && s.startedAt < doubleOutage.to);
  const acceptedDuringDouble = duringDouble.filter((s) => s.reply.startsWith('250'));
  t.diagnostic(timeline.join('; '));
  t.diagnostic(`sent ${load.sent.length}, accepted ${accepted.length}, refused with 4xx ${refused}, failed connections ${failed}, delivered ${delivered}, duplicates ${duplicates}, lost ${lost.length}`);
  t.diagnostic(`while two brokers were down: ${duringDouble.length} sent, replies ${[...new Set(duringDouble.map((s) => s.reply.slice(0, 40)))].join(' | ')}`);
  assert.deepEqual(lost.map((s) => s.messageId), [], 'a message answered 250 never arrived');
  assert.deepEqual(acceptedDuringDouble.map((s) => s.messageId), [], 'a 250 while only one broker was up');
  assert.ok(duringDouble.length > 0 && duringDouble.every((s) => !s.reply.startsWith('250')), 'clients kept trying during the double outage');
  assert.ok(accepted.length >= 1000, `only ${accepted.length} accepted`);
  assert.ok(accepted.some((s) => s.startedAt > doubleOutage.to + 15_000), 'mail was accepted again after the brokers returned');
});
