// `npm run fuzz -- --seconds N`: the fuzz properties of test/fuzz/ for N seconds each, for
// runs longer than CI's. It starts its own Kafka broker (kept in .cache/fuzz) and a relay, as
// the tests do. A failure prints fast-check's seed and path: replay it with
// `--seed S --path P`, then keep the case as a regression test beside the code it broke.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { KafkaBroker, repoRoot } from '../kafka/broker.ts';
import { compilerProperty, fanOutArbitrary, fanOutProperty, manifestArbitrary } from './mime-and-config-properties.ts';
import { playSession } from './smtp-session-runner.ts';
import { sessions } from './smtp-sessions.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    path: { type: 'string' },
    only: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(`npm run fuzz -- [--seconds N] [--only smtp|fanout|config] [--seed S --path P]
  --seconds N   how long each property runs (default 60)
  --only NAME   one property: smtp (the relay's SMTP sessions), fanout (fan-out and DKIM), config (the compiler)
  --seed, --path  replay a failure fast-check printed`);
  process.exit(0);
}
const seconds = Number(values.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, not ${values.seconds}`);
const replay = values.seed ? { seed: Number(values.seed), ...(values.path ? { path: values.path } : {}) } : {};
const settings = { numRuns: 1e9, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false, ...replay };

async function run(name: string, check: () => Promise<string>): Promise<boolean> {
  if (values.only && values.only !== name) return true;
  const started = Date.now();
  try {
    const summary = await check();
    console.log(`${name}: passed, ${summary}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return true;
  } catch (error) {
    console.error(`${name}: FAILED\n${(error as Error).message}`);
    return false;
  }
}

async function smtp(): Promise<string> {
  const dir = path.join(repoRoot, '.cache', 'fuzz');
  rmSync(path.join(dir, 'kafka'), { recursive: true, force: true });
  const broker = new KafkaBroker({ dir: path.join(dir, 'kafka') });
  await broker.start();
  const key = newApiKey();
  const relay = await RelayProcess.start({ resources: accountFolder(key).dir, kafka: broker.bootstrap,
    args: ['--allow-auth-without-tls', '--auth-slow-after', '100000000', '--auth-block-after', '200000000', '--max-recipients', '5'] });
  const reader = await KafkaReader.start(broker.bootstrap);
  try {
    const accepted: string[] = [];
    let played = 0;
    await fc.assert(fc.asyncProperty(sessions(key), async (session) => {
      accepted.push(...(await playSession(relay.ports.submission, key, session)).accepted);
      played++;
    }), settings);
    for (const id of accepted) await reader.waitFor(id, 30_000);
    if (relay.child.exitCode !== null) throw new Error(`the relay exited with ${relay.child.exitCode}`);
    return `${played} sessions, ${accepted.length} messages accepted and all found in Kafka`;
  } finally {
    await Promise.all([reader.stop(), relay.stop()]);
    await broker.stop();
  }
}

async function fanout(): Promise<string> {
  let runs = 0;
  let accepted = 0;
  await fc.assert(fc.asyncProperty(fanOutArbitrary, async ([message, to]) => {
    runs++;
    if (await fanOutProperty(message, to)) accepted++;
  }), settings);
  return `${runs} messages, ${accepted} accepted by the relay's checks and fanned out`;
}

async function config(): Promise<string> {
  let runs = 0;
  await fc.assert(fc.asyncProperty(fc.array(manifestArbitrary, { maxLength: 6 }), async (texts) => {
    runs++;
    compilerProperty(texts);
  }), settings);
  return `${runs} folders`;
}

const results = [await run('smtp', smtp), await run('fanout', fanout), await run('config', config)];
process.exit(results.every(Boolean) ? 0 : 1);
