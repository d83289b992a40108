// `npm run bench:tracker`: how many click redirects and open pixels `mtrelay tracker` answers
// on one core, how fast, and at what CPU and memory, with every event reaching Kafka. It starts
// a Kafka broker as the other benchmarks do, the tracker pinned to one core (taskset), and a
// load generator process pinned to another (http-load.ts) that sends signed tokens over
// keep-alive connections; the broker sits beside the load generator by default, so the tracker
// has its core alone. The events topic is counted after each phase and read back at the end.
// Prints a Markdown summary and writes it to .cache/bench-results/. Everything it starts, it
// stops and removes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import { pino } from 'pino';
import { newTransmissionId } from '../../shared/ids.ts';
import { ensureTopicsWhenReachable, topicNames } from '../../shared/kafka/topics.ts';
import { readTrackingKeys, writeNewTrackingKeys } from '../../shared/tracking/keys-file.ts';
import { signToken, type TrackingKeyRing } from '../../shared/tracking/tokens.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { KafkaBroker, repoRoot } from '../kafka/broker.ts';
import { ensureSystemTools } from '../system-deps.ts';
import type { PhaseRequest, PhaseResult } from './http-load.ts';
import { machine } from './machine.ts';
import { machineTicks, rssKb } from './proc-stats.ts';
import { UsageMeter } from './process-usage.ts';
import { writeMarkdown } from './report.ts';
import { RunControl } from './run-control.ts';
import { EventCounter } from './tracker-events.ts';
import { parseTrackerFlags, TRACKER_USAGE, type TrackerFlags } from './tracker-options.ts';
import { describePhase, renderTrackerSummary, type PhaseRow, type TrackerSummary } from './tracker-report.ts';

const dir = path.join(repoRoot, '.cache', 'bench-tracker');
const results = path.join(repoRoot, '.cache', 'bench-results');
const run = new RunControl('bench:tracker');
const HOST = '127.0.0.1';

/** Signed tokens as the deliverer makes them: newsletters of 20 links to recipients, a year to live. */
function makeTokens(ring: TrackingKeyRing, count: number): { clicks: string[]; pixels: string[] } {
  const expiresAt = Math.floor(Date.now() / 1000) + 365 * 86_400;
  const transmissions = Array.from({ length: Math.ceil(count / 20) }, () => newTransmissionId());
  const base = (i: number) => ({ transmissionId: transmissions[Math.floor(i / 20)]!, rcptTo: `reader.${i}@recipient${i % 7}.test`, namespace: 'acme', expiresAt });
  const clicks = Array.from({ length: count }, (_, i) => signToken(ring, {
    ...base(i), kind: 'click',
    target: `https://www.acme-shop.example/stories/${2026480 + (i % 20)}?utm_source=newsletter&utm_medium=email&utm_campaign=weekly-48&utm_content=link-${i % 20}`,
  }));
  const pixels = Array.from({ length: count }, (_, i) => signToken(ring, { ...base(i), kind: i % 2 ? 'open' : 'initial_open' }));
  return { clicks, pixels };
}

/** The load generator: a child process pinned to `cpus`, driven one phase at a time over IPC. */
async function startLoadGenerator(cpus: string, base: string, tokensFile: string, concurrency: number) {
  const child: ChildProcess = spawn('taskset', ['-c', cpus, process.execPath, path.join(import.meta.dirname, 'http-load.ts'), base, tokensFile, String(concurrency)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  run.defer(() => child.kill());
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the load generator exited with ${code}`))));
  const next = () => Promise.race([exited, new Promise<unknown>((resolve) => child.once('message', resolve))]);
  await next(); // 'ready'
  return {
    pid: child.pid!,
    run: async (phase: PhaseRequest) => {
      const answer = next();
      child.send(phase);
      return (await answer) as PhaseResult;
    },
    stop: () => child.send('exit'),
  };
}

/** Pins every thread of a running process (the broker's JVM) to `cpus`. */
function pin(pid: number, cpus: string): void {
  const result = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`taskset could not pin ${pid} to ${cpus}: ${result.stderr}`);
}

async function bench(flags: TrackerFlags): Promise<TrackerSummary> {
  const startedAt = new Date();
  const host = machine(); // before anything starts: its load average is the machine's own
  ensureSystemTools(['java', 'maven']);
  if (spawnSync('taskset', ['-V']).status !== 0) throw new Error('taskset (util-linux) is needed to pin the tracker and the load generator to cores');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  run.defer(() => rmSync(dir, { recursive: true, force: true }));

  run.progress('starting a Kafka broker');
  const broker = new KafkaBroker({ dir: path.join(dir, 'kafka') });
  run.defer(() => broker.stop());
  await broker.start();
  if (flags.brokerCpus) pin(broker.pid!, flags.brokerCpus);
  const prefix = `trk${Date.now()}`;
  const topic = topicNames(prefix).events;
  // The relay and the deliverer create the topics in production; here nobody else does.
  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'bench-topics', logLevel: logLevel.NOTHING });
  await ensureTopicsWhenReachable(kafka, { prefix, partitions: 3, replicationFactor: 1, maxMessageBytes: 1024 * 1024, retryDelays: ['1m'] }, pino({ level: 'silent' }));

  const keysFile = path.join(dir, 'tracking-keys');
  writeNewTrackingKeys(keysFile);
  const tokensFile = path.join(dir, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify(makeTokens(readTrackingKeys(keysFile), flags.tokens)));

  run.progress(`starting mtrelay tracker on CPU ${flags.trackerCpus}`);
  const tracker = new MtrelayProcess(['tracker', '--kafka', broker.bootstrap, '--topic-prefix', prefix, '--host', HOST, '--port', '0',
    '--metrics-host', HOST, '--metrics-port', '0', '--tracking-keys', keysFile], {}, ['taskset', '-c', flags.trackerCpus, process.execPath, path.join(repoRoot, 'cli.ts')]);
  run.defer(() => tracker.stop());
  const ready = await tracker.started('tracker listening');
  tracker.metricsPort = ready.metricsPort as number;
  await tracker.waitUntilReady();
  const load = await startLoadGenerator(flags.loadCpus, `http://${HOST}:${ready.port as number}`, tokensFile, flags.concurrency);
  const events = new EventCounter(broker.bootstrap, topic);
  await events.connect();
  run.defer(() => events.close());

  const answered = { clicks: 0, pixels: 0 };
  /** One phase, metered from its first request until the events of its answers are all in Kafka. */
  const phase = async (name: string, request: PhaseRequest): Promise<PhaseRow> => {
    run.progress(`${name}: ${request.rate ? `${request.rate}/s, ` : ''}up to ${request.requests} requests in ${request.seconds} s, ${request.concurrency} at a time`);
    const before = await events.records();
    const meter = new UsageMeter(tracker.child.pid!, false).start();
    const brokerMeter = new UsageMeter(broker.pid!, false).start();
    const machineBefore = machineTicks();
    const began = performance.now();
    const result = await load.run(request);
    answered.clicks += result.clicks;
    answered.pixels += result.pixels;
    const expected = result.clicks + result.pixels;
    const published = (await events.settle(before + expected)) - before;
    const usage = meter.stop();
    const machineAfter = machineTicks();
    const row: PhaseRow = {
      name, load: result, trackerCpuSeconds: usage.cpuSeconds, meteredSeconds: (performance.now() - began) / 1000,
      trackerRssKb: rssKb(tracker.child.pid!), trackerPeakRssKb: usage.peakRssKb, brokerCpuSeconds: brokerMeter.stop().cpuSeconds,
      machineBusy: (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total), events: { published, expected },
    };
    run.progress(`  ${describePhase(row)}`);
    return row;
  };

  const closed = { concurrency: flags.concurrency, requests: flags.requests, seconds: flags.seconds };
  if (flags.warmup) await phase('warm-up (not counted)', { kind: 'mixed', concurrency: flags.concurrency, requests: flags.warmup, seconds: 60 });
  const phases = [
    await phase('clicks: 302 redirects, closed loop', { kind: 'click', ...closed }),
    await phase('open pixels: GIFs, closed loop', { kind: 'open', ...closed }),
  ];
  if (flags.rate) {
    phases.push(await phase(`fixed rate: ${flags.rate}/s, clicks and pixels alternating`,
      { kind: 'mixed', concurrency: flags.concurrency, requests: flags.rate * flags.rateSeconds, seconds: flags.rateSeconds + 5, rate: flags.rate }));
  }
  load.stop();

  run.progress('reading the events topic back');
  const eventsByType = await events.countByType();
  const acknowledged = await Promise.all(['click', 'open', 'initial_open'].map((type) => tracker.metric('mtrelay_tracker_events_total', { type })));
  const trackerCounted = { events: acknowledged.reduce((a, b) => a + b, 0), lost: await tracker.metric('mtrelay_tracker_events_lost_total') };
  return {
    startedAt, machine: host, phases, eventsByType, answered, trackerCounted,
    setup: `mtrelay tracker pinned to CPU ${flags.trackerCpus}, the load generator to CPU ${flags.loadCpus}, the Kafka broker ` +
      `${flags.brokerCpus ? `to CPU ${flags.brokerCpus}` : 'unpinned'} (of ${os.availableParallelism()}); ${flags.tokens} click and ${flags.tokens} pixel tokens ` +
      `(signed with one key, taken in turn); ${flags.concurrency} keep-alive connections; each closed-loop phase up to ${flags.requests} requests or ` +
      `${flags.seconds} s, after a warm-up of ${flags.warmup} requests`,
    notes: notes(flags),
  };
}

function notes(flags: TrackerFlags): string[] {
  return [
    'Answered: a click\'s 302 with a Location, a pixel\'s 200 image/gif; anything else, and errors, are "other". Redirects/s and ' +
      'pixels/s: those answers over the phase\'s wall time, from its first request to its last answer.',
    'Latency: from writing a request to reading the end of its answer, in the load generator. In a closed loop it is mostly the ' +
      `wait behind the other ${flags.concurrency} requests (Little's law: concurrency ÷ throughput); the fixed-rate phase is the latency ` +
      'of a tracker that keeps up.',
    'Tracker CPU: utime+stime of its process (every thread) from /proc, from the phase\'s first request until the records of all ' +
      'its answers were in the events topic, so publishing (batched, after the answer) is included; % of a core over that span, and ' +
      'per request answered. RSS: at the end of the phase, and the process\'s peak (VmHWM) so far.',
    'Load generator CPU near 100% means the load generator, not the tracker, set the pace: the figures are then a lower bound.',
    'Events in Kafka: records the phase added to the events topic (end offsets, read after the tracker had published), against ' +
      'the answers that each publish one. At the end every record is read back and counted by type.',
    'The tracker is pinned with taskset, so its libuv threads and V8\'s GC threads share its one core too. The bench process ' +
      '(meters, reading the tracker\'s log, Kafka offsets) is not pinned.',
  ];
}

const flags = run.flags(parseTrackerFlags, TRACKER_USAGE);
await run.measure(20 * 60_000, () => bench(flags), (summary) => {
  const markdown = renderTrackerSummary(summary);
  return { markdown, file: writeMarkdown(results, 'tracker', summary.startedAt, markdown) };
});
