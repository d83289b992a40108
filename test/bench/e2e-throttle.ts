// `npm run bench:e2e -- --throttle R`: the sink answers like a mailbox provider under pressure
// (421 4.7.28 to each MAIL beyond R a second) and each system delivers the same load to it:
// mtrelay with per-provider shaping (the sink named a provider whose configured rate is four
// times R, so shaping has to find the real limit), mtrelay without it (--no-shaping: the
// per-destination limits, no rate), and Postfix. For each: how fast it delivered once it had
// settled, against the sink's limit, and how many attempts the sink refused along the way (a
// retry storm shows as many refusals per message delivered).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CountingSink } from './counting-sink.ts';
import type { E2eFlags } from './e2e-options.ts';
import type { SystemOptions, SystemUnderTest } from './e2e-systems.ts';
import { runClosedLoop } from './load-generator.ts';
import { messageFactory } from './message.ts';
import { fixed } from './report.ts';
import type { RunControl } from './run-control.ts';

/** The retry ladder of every system: throttled messages come back within the run. */
const RETRY_DELAYS = ['5s', '10s', '20s'];
/** Postfix's equivalent: its deferred queue is scanned every 5 s, and a deferred message waits 5 to 20 s. */
const POSTFIX_RETRIES = ['queue_run_delay = 5s', 'minimal_backoff_time = 5s', 'maximal_backoff_time = 20s'];

export interface ThrottleRow {
  name: string;
  delivered: number;
  accepted: number;
  /** From the first 250 to the last arrival. */
  seconds: number;
  /** Messages delivered per second over the second half of the deliveries (after settling). */
  settledRate: number;
  refused: number;
  /** Per second: arrivals, and MAILs the sink refused. */
  timeline: { delivered: number; refused: number }[];
}

interface Scenario {
  name: string;
  start: (o: SystemOptions) => Promise<SystemUnderTest>;
  options: Partial<SystemOptions>;
}

/** The shaped system's rules: the sink (reached through --route *=127.0.0.1:<port>) as a provider. */
function rulesFile(dir: string, flags: E2eFlags): string {
  const file = path.join(dir, 'bench-providers.yaml');
  writeFileSync(file, `providers:\n  bench-sink:\n    mx: ["127.0.0.1"]\n    connections: ${flags.outConnections}\n    messagesPerConnection: 100\n    messagesPerSecond: ${4 * flags.throttle}\n`);
  return file;
}

export function throttleScenarios(flags: E2eFlags, dir: string, systems: { standalone: Scenario['start']; kafka: Scenario['start']; postfix: Scenario['start'] }): Scenario[] {
  const shaped = { retryDelays: RETRY_DELAYS.join(','), deliveryArgs: ['--shaping-rules', rulesFile(dir, flags)] };
  const unshaped = { retryDelays: RETRY_DELAYS.join(','), deliveryArgs: ['--no-shaping'] };
  return [
    ...(flags.standalone ? [{ name: 'shaped', start: systems.standalone, options: { ...shaped, variant: 'per-provider shaping' } },
      { name: 'unshaped', start: systems.standalone, options: { ...unshaped, variant: '--no-shaping' } }] : []),
    ...(flags.kafka ? [{ name: 'kafka shaped', start: systems.kafka, options: { ...shaped, variant: 'per-provider shaping' } }] : []),
    ...(flags.postfix ? [{ name: 'postfix', start: systems.postfix, options: { postfixLines: POSTFIX_RETRIES } }] : []),
  ];
}

/** Sends the load, then samples the sink every second until every accepted message arrived (or the time is up). */
export async function measureThrottled(system: SystemUnderTest, sink: CountingSink, flags: E2eFlags, run: RunControl): Promise<ThrottleRow> {
  const before = { delivered: sink.messages, refused: sink.throttled };
  const timeline: ThrottleRow['timeline'] = [];
  let last = { ...before };
  let firstAccepted = 0;
  const sampler = setInterval(() => {
    timeline.push({ delivered: sink.messages - last.delivered, refused: sink.throttled - last.refused });
    last = { delivered: sink.messages, refused: sink.throttled };
  }, 1000);
  try {
    const perConnection = Math.ceil(flags.messages / flags.connections);
    const load = await runClosedLoop(system.target, {
      connections: flags.connections, messages: perConnection, size: 4096, factory: messageFactory, from: 'sender@example.com', to: 'someone@recipient.test',
      onAccepted: (_m, at) => { firstAccepted ||= at; },
    });
    run.progress(`  accepted ${load.accepted} of ${load.attempted}; delivering at the sink's pace`);
    const deadline = performance.now() + flags.deliverTimeoutSeconds * 1000 + (load.accepted / flags.throttle) * 3000;
    let lastArrival = performance.now();
    let seen = sink.messages;
    while (sink.messages - before.delivered < load.accepted && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      if (sink.messages !== seen) [seen, lastArrival] = [sink.messages, performance.now()];
    }
    const delivered = sink.messages - before.delivered;
    // The second half of the deliveries, by the timeline: the pace the system settled at.
    let cumulative = 0;
    const half = timeline.findIndex((t) => (cumulative += t.delivered) >= delivered / 2);
    const tail = half < 0 ? [] : timeline.slice(half + 1);
    const settledRate = tail.length ? tail.reduce((n, t) => n + t.delivered, 0) / tail.length : Number.NaN;
    return {
      name: system.name, delivered, accepted: load.accepted, seconds: (lastArrival - firstAccepted) / 1000,
      settledRate, refused: sink.throttled - before.refused, timeline: [...timeline],
    };
  } finally {
    clearInterval(sampler);
  }
}

export function renderThrottleSummary(rows: ThrottleRow[], flags: E2eFlags, startedAt: Date, machine: string[]): string {
  const lines = [
    `# bench:e2e --throttle ${flags.throttle}, ${startedAt.toISOString()}`, '',
    ...machine.map((m) => `- ${m}`), '',
    `Load: ${flags.messages} messages of 4 KB over ${flags.connections} connections, submitted as fast as each system accepts them. ` +
      `The sink answers \`421 4.7.28\` to every MAIL beyond ${flags.throttle} a second (a token bucket of one second). ` +
      `Retries: mtrelay ${RETRY_DELAYS.join(', ')}; Postfix ${POSTFIX_RETRIES.join(', ')}. The shaped runs know the sink as a ` +
      `provider allowed ${4 * flags.throttle} msgs/s and ${flags.outConnections} connections: four times what it takes.`, '',
    '| system | delivered | seconds | msgs/s | of the limit | settled msgs/s | of the limit | 421 replies | 421 per delivered message |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.name} | ${r.delivered} of ${r.accepted} | ${fixed(r.seconds, 1)} | ${fixed(r.delivered / r.seconds, 1)} | ` +
      `${fixed(r.delivered / r.seconds / flags.throttle, 2)} | ${fixed(r.settledRate, 1)} | ` +
      `${fixed(r.settledRate / flags.throttle, 2)} | ${r.refused} | ${fixed(r.refused / Math.max(1, r.delivered), 2)} |`),
    '',
    'Msgs/s: all deliveries over the time from the first 250 to the last arrival. Settled msgs/s: arrivals per second over the ' +
      'second half of the deliveries. 421 per delivered message: attempts the sink refused for each message it took; a retry ' +
      'storm shows as many. Per-second timelines (delivered/refused):', '',
    ...rows.map((r) => `- ${r.name}: ${r.timeline.map((t) => `${t.delivered}/${t.refused}`).join(' ')}`),
    '', `Everything shares this machine's ${os.availableParallelism()} CPUs.`,
  ];
  return `${lines.join('\n')}\n`;
}
