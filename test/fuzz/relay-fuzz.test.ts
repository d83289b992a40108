// The relay under random and grammar-shaped SMTP sessions (fast-check): the process survives,
// its memory stays bounded, every reply is well-formed with an enhanced status code where the
// command has one, and every 250 is a record in Kafka. A short run here; `npm run fuzz --
// --seconds N` runs the same property for longer. A failing case prints its seed and path, so
// it can be replayed and kept as a regression test below.
// @needs kafka processes
// @limit 120s
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { checkReply, playSession } from './smtp-session-runner.ts';
import { sessions } from './smtp-sessions.ts';

const key = newApiKey();
const account = accountFolder(key);
let relay: RelayProcess;
let kafka: KafkaReader;
/** Resident memory the relay may reach under this load: it holds no message longer than its transaction. */
const RSS_LIMIT_MIB = 300;

before(async () => {
  kafka = await KafkaReader.start(testKafka());
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(),
    args: ['--allow-auth-without-tls', '--auth-slow-after', '100000', '--auth-block-after', '200000', '--max-recipients', '5'] });
});
after(async () => {
  await Promise.all([relay?.stop(), kafka?.stop()]);
});

const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${relay.child.pid}/status`, 'utf8'))![1]) / 1024;

test('random sessions: the relay survives, answers well-formed replies with enhanced codes, and every 250 is in Kafka', async () => {
  const accepted: string[] = [];
  let played = 0;
  await fc.assert(fc.asyncProperty(sessions(key), async (session) => {
    const transcript = await playSession(relay.ports.submission, key, session);
    accepted.push(...transcript.accepted);
    played++;
  }), { numRuns: 250, interruptAfterTimeLimit: 60_000 });
  assert.ok(played >= 100, `only ${played} sessions ran`);
  assert.ok(accepted.length >= 10, `only ${accepted.length} sessions reached a 250: the generator no longer exercises transactions`);
  for (const id of accepted) await kafka.waitFor(id, 10_000);
  assert.equal(relay.child.exitCode, null, 'the relay is still running');
  assert.ok(rssMiB() < RSS_LIMIT_MIB, `the relay's RSS is ${rssMiB().toFixed(0)} MiB`);
});

test('the reply checks can fail: a reply without an enhanced code, a bad continuation, a wrong class', () => {
  const transcript = { accepted: [], lines: [] };
  assert.throws(() => checkReply('250 OK', 'NOOP', transcript), /no enhanced status code/);
  assert.throws(() => checkReply('250 2.0.0 a\r\n250 2.0.0 b', 'NOOP', transcript), /continuation mark/);
  assert.throws(() => checkReply('550 2.0.0 odd', 'RCPT TO:<a@b>', transcript), /class differs/);
  assert.throws(() => checkReply('25 short', 'NOOP', transcript), /malformed reply line/);
  checkReply('250-relay.test\r\n250 SIZE 1000', 'EHLO x', transcript);
  checkReply('220 relay.test ESMTP', '(greeting)', transcript);
});
