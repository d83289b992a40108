// `npm run bench:e2e`: the same SMTP load through three systems that all deliver to one sink
// on loopback, run inside this process: mtrelay in Kafka mode (relay, deliverer and a Kafka
// broker this script starts), mtrelay standalone (SQLite queue), and a private Postfix relaying
// to the sink. Prints delivered msgs/s, accept → deliver latency and CPU per 1000 messages of
// each, and their ratios to Postfix against the project's goals; writes the Markdown summary
// to .cache/bench-results/. Everything it starts, it stops and removes. With --html and
// --tracking the messages are HTML newsletters and each mtrelay mode runs untracked and with
// open and click tracking (e2e-tracking.ts), against the same Postfix baseline.
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeNewTrackingKeys } from '../../shared/tracking/keys-file.ts';
import { repoRoot } from '../kafka/broker.ts';
import { ensureSystemTools } from '../system-deps.ts';
import { benchAccount } from './bench-account.ts';
import { CountingSink } from './counting-sink.ts';
import { measureEndToEnd, type Arrivals, type E2eRow, type Plan } from './e2e-measure.ts';
import { E2E_USAGE, parseE2eFlags, type E2eFlags } from './e2e-options.ts';
import { describeE2e, renderE2eSummary, type E2eSummary, type SizeResult } from './e2e-report.ts';
import { startKafkaMode, startPostfix, startStandalone, type SystemOptions, type SystemUnderTest } from './e2e-systems.ts';
import { TRACKING_HOST, TRACKING_URL, trackedAccountFolder, trackingNotes, trackingVariants, type Variant } from './e2e-tracking.ts';
import { htmlMessageFactory, TRACKED_LINKS } from './html-message.ts';
import type { LoadOptions } from './load-generator.ts';
import { machine } from './machine.ts';
import { messageFactory, type MessageFactory } from './message.ts';
import { writeMarkdown } from './report.ts';
import { measureThrottled, renderThrottleSummary, throttleScenarios, type ThrottleRow } from './e2e-throttle.ts';
import { RunControl } from './run-control.ts';

const cache = path.join(repoRoot, '.cache');
const dirs = {
  kafka: path.join(cache, 'bench-e2e-kafka'),
  account: path.join(cache, 'bench-e2e-run'),
  trackedAccount: path.join(cache, 'bench-e2e-run-tracked'),
  trackingKeys: path.join(cache, 'bench-e2e-tracking-keys'),
  standalone: path.join(cache, 'bench-e2e-standalone'),
  postfix: path.join(cache, 'bench-e2e-postfix'),
  results: path.join(cache, 'bench-results'),
};
const run = new RunControl('bench:e2e');

/** `messages` spread over `connections` (each connection sends the same number). */
function closedLoop(messages: number, connections: number, size: number, factory: MessageFactory): LoadOptions {
  const used = Math.min(connections, messages);
  return { connections: used, messages: Math.ceil(messages / used), size, factory, from: 'sender@example.com', to: 'someone@recipient.test' };
}

const htmlMessages = (flags: E2eFlags) => flags.html || flags.tracking;

function notes(flags: E2eFlags): string[] {
  return [
    'Delivered msgs/s: messages that reached the sink, divided by the time from the first 250 of the measured load to the last ' +
      'arrival at the sink. Accept → deliver latency: from the moment the load generator read a message\'s 250 to the moment the ' +
      'sink read its final dot; both run in this process, on one clock. Messages are matched by their Message-ID.',
    'At full load every system accepts faster than it delivers, so a backlog builds up and the full-load latency mostly measures ' +
      'how long messages waited in it; it grows with --messages. The fixed-rate table is the latency of a system that keeps up.',
    `Warm-up: ${flags.warmup} messages per system, sent and delivered before measuring. A freshly started Kafka broker spends ` +
      'several CPU-seconds in its JIT compiler threads; with a short warm-up that shows up as broker CPU per message.',
    'CPU is utime+stime from /proc from the first connect until the last message had arrived and the server had finished its own ' +
      'work on them (the deliverer\'s in-flight gauge back at 0, so its outcomes were written; Postfix\'s queue empty), per 1000 ' +
      'delivered messages. For Postfix it is the master plus all its children (smtpd, cleanup, qmgr, trivial-rewrite, smtp, ' +
      'postlogd, …), including those that exited. The Kafka broker\'s CPU is its own column; it is part of what Kafka mode costs. ' +
      'Machine CPU busy is the whole machine (/proc/stat), every process included.',
    'mtrelay: AUTH PLAIN without TLS (--allow-auth-without-tls). Postfix: no AUTH (there is no SASL backend here; loopback is ' +
      'trusted through mynetworks), no TLS. The sink offers no STARTTLS.',
    `Outbound: ${flags.outConnections} SMTP connections to the sink for each system: the deliverer's --connections-per-destination ` +
      `(with --max-in-flight ${flags.maxInFlight} and the default --messages-per-connection 100), and Postfix's ` +
      'default_destination_concurrency_limit, smtp_destination_concurrency_limit and initial_destination_concurrency (relayhost = ' +
      '[127.0.0.1]:<sink port>, default_transport = smtp, smtp_tls_security_level = none; no local delivery: mydestination is empty).',
    'Durability differs: Postfix fsyncs each queue file before its 250; standalone commits to SQLite (WAL, synchronous=FULL) ' +
      'before its 250; Kafka mode answers 250 once the one broker acknowledged (acks=all, one replica, page cache, no fsync per message).',
    `Kafka records: --kafka-compression ${flags.kafkaCompression}. ` + (htmlMessages(flags)
      ? `Messages are HTML newsletters (test/bench/html-message.ts): multipart/alternative, a short text part and a quoted-printable ` +
        `HTML part laid out with tables and inline styles, with ${TRACKED_LINKS} http(s) links (UTM parameters written &amp;), a mailto: ` +
        'link and an anchor; the article text is random words, so each message\'s body is its own.'
      : 'Messages are shaped like newsletters: up to 16 KB of text, then base64 lines of random bytes (an image); each message\'s body is its own.'),
    `Everything shares this machine's ${os.availableParallelism()} CPUs: load generator, sink, servers and, in Kafka mode, the broker ` +
      '(a JVM). The bench process\'s own CPU (load generator, sink, reading mtrelay\'s JSON logs) is in its column and is taken from ' +
      'the servers under test. The broker is stopped before the standalone and Postfix runs. These are comparisons on this machine, not ' +
      'capacity figures; run it a few times before drawing conclusions.',
  ];
}

/** Messages of a run at `size`: the flag's count up to 100 KB, then the same bytes (at least one per connection). */
function scaled(count: number, size: number, connections: number): number {
  return size <= 102_400 ? count : Math.max(connections, Math.round((count * 102_400) / size));
}

/** What the sink has counted so far. */
const sinkCounts = (sink: CountingSink): Arrivals => ({ messages: sink.messages, signed: sink.signed, tracked: sink.tracked, trackingUrls: sink.trackingUrls });

async function scenario(name: string, size: number, start: () => Promise<SystemUnderTest>, sink: CountingSink, flags: E2eFlags, notes: string[]): Promise<E2eRow> {
  run.progress(`${name}, ${size} bytes: starting`);
  const before = sinkCounts(sink);
  const system = await start();
  const withOpenLoop = flags.rate > 0 && size === Math.min(...flags.sizes); // a fixed rate every system keeps up with at the smallest size
  const factory = htmlMessages(flags) ? htmlMessageFactory : messageFactory;
  const plan: Plan = {
    load: closedLoop(scaled(flags.messages, size, flags.connections), flags.connections, size, factory),
    ...(flags.warmup > 0 ? { warmup: closedLoop(scaled(flags.warmup, size, flags.connections), flags.connections, size, factory) } : {}),
    ...(withOpenLoop ? { open: { rate: flags.rate, seconds: flags.seconds } } : {}),
    timeoutMs: flags.deliverTimeoutSeconds * 1000,
  };
  run.progress(`${name}: ${plan.warmup ? `warm-up of ${plan.warmup.connections * plan.warmup.messages}, then ` : ''}` +
    `${plan.load.connections} connections × ${plan.load.messages} messages${plan.open ? `, then ${flags.rate} msgs/s for ${flags.seconds} s` : ''}`);
  const row = await measureEndToEnd(system, sink, plan);
  const after = sinkCounts(sink);
  row.arrivals = { messages: after.messages - before.messages, signed: after.signed - before.signed, tracked: after.tracked - before.tracked,
    trackingUrls: after.trackingUrls - before.trackingUrls };
  run.progress(`  ${describeE2e(row)}`);
  const a = row.arrivals;
  notes.push(`${system.name}, ${size} bytes: ${await system.check()}; the sink received ${a.messages} messages from it, ` +
    `${a.signed} of them with a DKIM-Signature` + (htmlMessages(flags)
      ? `, ${a.tracked} with links or pixels through ${TRACKING_HOST}${a.tracked ? ` (${(a.trackingUrls / a.tracked).toFixed(1)} occurrences a message)` : ''}.`
      : '.'));
  await system.stop();
  return row;
}

async function bench(flags: E2eFlags): Promise<E2eSummary> {
  ensureSystemTools(['swaks', 'openssl', 'java', 'maven', ...(flags.postfix ? ['postfix' as const, 'opendkim' as const] : [])]);
  const load = closedLoop(flags.messages, flags.connections, flags.sizes[0]!, messageFactory);
  const what = htmlMessages(flags)
    ? `HTML newsletters of ${flags.htmlSize} bytes (${TRACKED_LINKS} links each)`
    : `messages of each size (${flags.sizes.join(', ')} bytes; above 100 KB, as many bytes as 100 KB messages make)`;
  const summary: E2eSummary = {
    startedAt: new Date(), machine: machine(), sizes: [], notes: [...notes(flags), ...(htmlMessages(flags) ? trackingNotes(flags) : [])],
    load: `${load.connections} connections × ${load.messages} ${what}, one transaction at a time per connection (MAIL, RCPT, DATA ` +
      'pipelined), one recipient each, every message DKIM-signed, after an uncounted warm-up of ' +
      `${flags.warmup} messages (scaled the same way) that had to be delivered first` +
      `${flags.rate > 0 ? `; then, at ${Math.min(...flags.sizes)} bytes, ${flags.rate} msgs/s for ${flags.seconds} s (open loop, same connections)` : ''}`,
  };

  const sink = new CountingSink(undefined, htmlMessages(flags) ? TRACKING_HOST : undefined);
  await sink.listen();
  run.defer(() => sink.close());
  const { account, dkim } = benchAccount(run, dirs.account);
  const { key } = account;
  // With HTML messages every mtrelay run gets the same tracking keys and URL; only the tracked
  // runs' account asks for tracking.
  let tracking: SystemOptions['tracking'];
  let trackedAccount = account;
  if (htmlMessages(flags)) {
    writeNewTrackingKeys(dirs.trackingKeys);
    run.defer(() => rmSync(dirs.trackingKeys, { force: true }));
    tracking = { keysFile: dirs.trackingKeys, url: TRACKING_URL };
    trackedAccount = { resources: trackedAccountFolder(account.resources, dirs.trackedAccount), key };
    run.defer(() => rmSync(dirs.trackedAccount, { recursive: true, force: true }));
  }
  const options = (dir: string, variant: Variant = { tracked: false }): SystemOptions => ({
    run, dir, account: variant.tracked ? trackedAccount : account, dkim, sinkPort: sink.port, outConnections: flags.outConnections,
    maxInFlight: flags.maxInFlight, kafkaCompression: flags.kafkaCompression, ...(tracking ? { tracking } : {}), ...(variant.label ? { variant: variant.label } : {}),
  });

  const checks: string[] = [];
  const variants = trackingVariants(flags);
  for (const size of flags.sizes) {
    const result: SizeResult = { size, rows: [] };
    const mtrelay = async (name: string, start: (o: SystemOptions) => Promise<SystemUnderTest>, dir: string) => {
      const rows: Partial<Record<'plain' | 'tracked', E2eRow>> = {};
      for (const variant of variants) {
        const row = await scenario(`${name}${variant.label ? `, ${variant.label}` : ''}`, size, () => start(options(dir, variant)), sink, flags, checks);
        rows[variant.tracked ? 'tracked' : 'plain'] = row;
        result.rows.push(row);
      }
      return rows;
    };
    if (flags.kafka) {
      const { plain, tracked } = await mtrelay('Kafka mode', startKafkaMode, dirs.kafka);
      if (plain) result.kafka = plain;
      if (tracked) result.kafkaTracked = tracked;
    }
    if (flags.standalone) {
      const { plain, tracked } = await mtrelay('standalone', startStandalone, dirs.standalone);
      if (plain) result.standalone = plain;
      if (tracked) result.standaloneTracked = tracked;
    }
    if (flags.postfix) {
      result.postfix = await scenario('Postfix', size, () => startPostfix(options(dirs.postfix)), sink, flags, checks);
      result.rows.push(result.postfix);
    }
    summary.sizes.push(result);
  }
  summary.notes.push(...checks);
  for (const r of summary.sizes.flatMap((s) => s.rows)) {
    for (const [phase, d, all] of [['full load', r.delivery, r.allDelivered], ['fixed rate', r.open?.delivery, r.open?.allDelivered]] as const) {
      if (!d) continue;
      if (!all) summary.notes.push(`${r.name}, ${r.size} bytes, ${phase}: ${d.accepted - d.delivered} accepted messages had not reached the sink after ${flags.deliverTimeoutSeconds} s.`);
      if (d.duplicates) summary.notes.push(`${r.name}, ${r.size} bytes, ${phase}: the sink received ${d.duplicates} messages more than once (at-least-once delivery).`);
    }
  }
  return summary;
}

/** --throttle: each system against a sink that throttles like a provider under pressure. */
async function throttled(flags: E2eFlags): Promise<{ startedAt: Date; rows: ThrottleRow[] }> {
  ensureSystemTools(['swaks', 'openssl', 'java', 'maven', ...(flags.postfix ? ['postfix' as const, 'opendkim' as const] : [])]);
  const startedAt = new Date();
  const sink = new CountingSink(undefined, undefined, flags.throttle);
  await sink.listen();
  run.defer(() => sink.close());
  const { account, dkim } = benchAccount(run, dirs.account);
  const rows: ThrottleRow[] = [];
  for (const scenario of throttleScenarios(flags, cache, { standalone: startStandalone, kafka: startKafkaMode, postfix: startPostfix })) {
    const dir = scenario.start === startPostfix ? dirs.postfix : scenario.start === startKafkaMode ? dirs.kafka : dirs.standalone;
    run.progress(`${scenario.name}: starting`);
    const system = await scenario.start({
      run, dir, account, dkim, sinkPort: sink.port, outConnections: flags.outConnections, maxInFlight: flags.maxInFlight,
      kafkaCompression: flags.kafkaCompression, ...scenario.options,
    });
    const row = await measureThrottled(system, sink, flags, run);
    run.progress(`  ${row.delivered} of ${row.accepted} delivered in ${row.seconds.toFixed(1)} s, settled at ${row.settledRate.toFixed(1)} msgs/s, ${row.refused} 421 replies`);
    rows.push(row);
    await system.stop();
    // The sink's bucket refills before the next system.
    await new Promise((r) => setTimeout(r, 2000));
  }
  return { startedAt, rows };
}

const flags = run.flags(parseE2eFlags, E2E_USAGE);
if (flags.throttle > 0) {
  await run.measure(40 * 60_000, () => throttled(flags), ({ startedAt, rows }) => {
    const markdown = renderThrottleSummary(rows, flags, startedAt, machine());
    return { markdown, file: writeMarkdown(dirs.results, 'e2e-throttle', startedAt, markdown) };
  });
} else {
  await run.measure(40 * 60_000, () => bench(flags), (summary) => {
    const markdown = renderE2eSummary(summary);
    return { markdown, file: writeMarkdown(dirs.results, 'e2e', summary.startedAt, markdown) };
  });
}
