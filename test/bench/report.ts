// The benchmark's summary as Markdown: one table row per run, the mtrelay/Postfix ratios,
// the latency and idle-memory goals, and the notes a reader needs to judge the numbers.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LoadResult, OpenLoopResult } from './load-generator.ts';
import type { Usage } from './process-usage.ts';

export interface RunRow {
  name: string;
  load: LoadResult;
  usage: Usage;
  /** CPU seconds the Kafka broker spent during the run (mtrelay runs only). */
  kafkaCpuSeconds?: number;
  /** CPU seconds of the benchmark process itself (the load generator) during the run. */
  clientCpuSeconds: number;
  /** STARTTLS runs with a client session cache: the share of handshakes that resumed a session. */
  resumedShare?: number;
}

/** An mtrelay run and the Postfix run with the same load, with the goal for their throughput ratio if there is one. */
export interface Ratio {
  label: string;
  relay: RunRow;
  postfix: RunRow;
  goal?: number;
}

export interface IdleResult {
  requested: number;
  opened: number;
  failed: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  /** Why fewer than asked, when so (file descriptor limit). */
  note?: string;
}

export interface Summary {
  startedAt: Date;
  machine: string[];
  load: string;
  rows: RunRow[];
  /** mtrelay ÷ Postfix, per load shape and TLS. */
  ratios: Ratio[];
  openLoop?: { result: OpenLoopResult; usage: Usage; peakRate: number };
  idle?: IdleResult;
  notes: string[];
}

export const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
export const perThousand = (seconds: number, messages: number) => (messages > 0 ? (seconds / messages) * 1000 : Number.NaN);
const mib = (kb: number) => fixed(kb / 1024, 1);

function row(r: RunRow): string {
  const other = r.load.attempted - r.load.accepted;
  const resumed = r.resumedShare === undefined ? '–' : `${fixed(r.resumedShare * 100, 0)}%`;
  return `| ${r.name} | ${r.load.accepted} / ${other} | ${fixed(r.load.rate, 0)} | ${resumed} | ${fixed(r.load.latency.p50, 1)} | ` +
    `${fixed(r.load.latency.p99, 1)} | ${fixed(perThousand(r.usage.cpuSeconds, r.load.accepted), 3)} | ` +
    `${r.kafkaCpuSeconds === undefined ? '–' : fixed(perThousand(r.kafkaCpuSeconds, r.load.accepted), 3)} | ` +
    `${fixed(perThousand(r.clientCpuSeconds, r.load.accepted), 3)} | ${mib(r.usage.peakRssKb)} | ${mib(r.usage.peakPssKb)} | ${r.usage.processes} |`;
}

export function idleKbPerConnection(idle: IdleResult): number {
  return idle.opened > 0 ? (idle.rssAfterKb - idle.rssBeforeKb) / idle.opened : Number.NaN;
}

export function renderSummary(s: Summary): string {
  const lines = [
    `# mtrelay relay benchmark, ${s.startedAt.toISOString()}`, '',
    ...s.machine.map((m) => `- ${m}`), `- Load: ${s.load}`, '',
    '| Run | 250 / other | accepted msgs/s | TLS sessions resumed | reply p50 ms | reply p99 ms | server CPU s per 1000 msgs | Kafka CPU s per 1000 msgs | ' +
      'load generator CPU s per 1000 msgs | peak RSS MiB | peak PSS MiB | server processes |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...s.rows.map(row), '',
  ];
  if (s.ratios.length) {
    lines.push('**mtrelay ÷ Postfix**, same load, same machine:', '',
      '| load | accepted msgs/s | CPU per 1000 msgs (relay only) | CPU per 1000 msgs (relay + Kafka broker) | goal (msgs/s) |', '|---|---|---|---|---|');
    for (const { label, relay, postfix, goal } of s.ratios) {
      const throughput = relay.load.rate / postfix.load.rate;
      const cpuPostfix = perThousand(postfix.usage.cpuSeconds, postfix.load.accepted);
      const cpuRelay = perThousand(relay.usage.cpuSeconds, relay.load.accepted) / cpuPostfix;
      const cpuWithKafka = perThousand(relay.usage.cpuSeconds + (relay.kafkaCpuSeconds ?? 0), relay.load.accepted) / cpuPostfix;
      const verdict = goal === undefined ? '–' : `≥ ${fixed(goal, 1)}×: **${throughput >= goal ? 'met' : 'not met'}**`;
      lines.push(`| ${label} | ${fixed(throughput, 2)}× | ${fixed(cpuRelay, 2)}× | ${fixed(cpuWithKafka, 2)}× | ${verdict} |`);
    }
    lines.push('');
  }
  if (s.openLoop) {
    const { result, usage, peakRate } = s.openLoop;
    const met = result.latency.p99 < 50 && result.errors === 0 && result.accepted === result.attempted;
    lines.push(
      `**Open loop** at ${fixed(result.targetRate, 0)} msgs/s (${fixed((result.targetRate / peakRate) * 100, 0)}% of the measured peak ` +
        `${fixed(peakRate, 0)} msgs/s) for ${fixed(result.wallSeconds, 1)} s: ${result.accepted} / ${result.attempted} accepted, ` +
        `achieved ${fixed(result.rate, 0)} msgs/s; reply latency p50 ${fixed(result.latency.p50, 1)} ms, p99 ${fixed(result.latency.p99, 1)} ms, ` +
        `max ${fixed(result.latency.max, 1)} ms (due → reply p99 ${fixed(result.sojourn.p99, 1)} ms); ` +
        `relay CPU ${fixed(perThousand(usage.cpuSeconds, result.accepted), 3)} s per 1000 msgs. ` +
        `Goal p99 < 50 ms: **${met ? 'met' : 'not met'}**.`, '',
    );
  }
  if (s.idle) {
    const perConnection = idleKbPerConnection(s.idle);
    lines.push(
      `**Idle connections**: ${s.idle.opened} of ${s.idle.requested} opened (${s.idle.failed} failed), each after the greeting and EHLO; ` +
        `relay RSS ${mib(s.idle.rssBeforeKb)} MiB → ${mib(s.idle.rssAfterKb)} MiB = ${fixed(perConnection, 1)} KiB per idle connection. ` +
        `Goal < 64 KiB: **${perConnection < 64 ? 'met' : 'not met'}**.${s.idle.note ? ` ${s.idle.note}` : ''}`, '',
    );
  }
  lines.push('Notes:', '', ...s.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

/** Writes a summary to <resultsDir>/<prefix>-<timestamp>.md; returns the path. */
export function writeMarkdown(resultsDir: string, prefix: string, startedAt: Date, markdown: string): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${prefix}-${startedAt.toISOString().replace(/[:.]/g, '-')}.md`);
  writeFileSync(file, markdown);
  return file;
}

/** Writes the summary to .cache/bench-results/relay-<timestamp>.md; returns the path. */
export function writeSummary(resultsDir: string, s: Summary, markdown: string): string {
  return writeMarkdown(resultsDir, 'relay', s.startedAt, markdown);
}
