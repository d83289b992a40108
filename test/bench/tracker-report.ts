// The tracker benchmark's summary as Markdown: one row per phase (answers per second, latency,
// the tracker's CPU and memory, the broker's CPU), the events Kafka holds against the answers
// given, and the notes needed to judge the numbers.
import type { PhaseResult } from './http-load.ts';
import { fixed } from './report.ts';

export interface PhaseRow {
  name: string;
  load: PhaseResult;
  /** The tracker's CPU from the phase's first request until its events were in Kafka. */
  trackerCpuSeconds: number;
  /** Wall time of that same span. */
  meteredSeconds: number;
  trackerRssKb: number;
  trackerPeakRssKb: number;
  brokerCpuSeconds: number;
  machineBusy: number;
  /** Records the phase added to the events topic, and the answers that should each have made one. */
  events: { published: number; expected: number };
}

export interface TrackerSummary {
  startedAt: Date;
  machine: string[];
  setup: string;
  phases: PhaseRow[];
  /** Every record of the events topic read back, by type, against the answers of all phases (warm-up included). */
  eventsByType: Record<string, number>;
  answered: { clicks: number; pixels: number };
  /** The tracker's own counters: events acknowledged by Kafka, and lost. */
  trackerCounted: { events: number; lost: number };
  notes: string[];
}

const ok = (r: PhaseResult) => r.clicks + r.pixels;
const failed = (r: PhaseResult) => r.errors + Object.values(r.unexpected).reduce((sum, n) => sum + n, 0);

function phaseRow(p: PhaseRow): string {
  const r = p.load;
  const perSecond = (n: number) => fixed(n / r.wallSeconds, 0);
  return `| ${p.name} | ${ok(r)} / ${failed(r)} | ${r.clicks ? `**${perSecond(r.clicks)}**` : '–'} | ${r.pixels ? `**${perSecond(r.pixels)}**` : '–'} | ` +
    `${fixed(r.latency.p50, 2)} | ${fixed(r.latency.p90, 2)} | ${fixed(r.latency.p99, 2)} | ${fixed(r.latency.max, 1)} | ` +
    `${fixed((p.trackerCpuSeconds / p.meteredSeconds) * 100, 0)}% | ${fixed((p.trackerCpuSeconds / ok(r)) * 1e6, 0)} | ` +
    `${fixed(p.trackerRssKb / 1024, 0)} / ${fixed(p.trackerPeakRssKb / 1024, 0)} | ${fixed((r.cpuSeconds / r.wallSeconds) * 100, 0)}% | ` +
    `${fixed((p.brokerCpuSeconds / ok(r)) * 1e6, 0)} | ${fixed(p.machineBusy * 100, 0)} | ${p.events.published} / ${p.events.expected} |`;
}

/** One line for the console. */
export function describePhase(p: PhaseRow): string {
  const r = p.load;
  return `${ok(r)} answered as expected, ${failed(r)} not${r.firstError ? ` (first error: ${r.firstError})` : ''}; ${fixed(ok(r) / r.wallSeconds, 0)}/s; ` +
    `latency p50 ${fixed(r.latency.p50, 2)} ms, p99 ${fixed(r.latency.p99, 2)} ms; tracker ${fixed((p.trackerCpuSeconds / p.meteredSeconds) * 100, 0)}% of a core, ` +
    `load generator ${fixed((r.cpuSeconds / r.wallSeconds) * 100, 0)}%; events in Kafka ${p.events.published}/${p.events.expected}`;
}

export function renderTrackerSummary(s: TrackerSummary): string {
  const clicksInKafka = s.eventsByType.click ?? 0;
  const opensInKafka = (s.eventsByType.open ?? 0) + (s.eventsByType.initial_open ?? 0);
  const other = Object.entries(s.eventsByType).filter(([type]) => !['click', 'open', 'initial_open'].includes(type));
  const complete = clicksInKafka === s.answered.clicks && opensInKafka === s.answered.pixels && !other.length;
  return [
    `# mtrelay tracker benchmark, ${s.startedAt.toISOString()}`, '',
    ...s.machine.map((m) => `- ${m}`), `- Setup: ${s.setup}`, '',
    '| Phase | answered / other | redirects/s | pixels/s | latency p50 ms | p90 ms | p99 ms | max ms | tracker CPU (% of a core) | ' +
      'tracker CPU µs / request | tracker RSS MiB (end / peak) | load generator CPU (% of a core) | Kafka CPU µs / request | machine CPU busy % | events in Kafka / expected |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...s.phases.map(phaseRow), '',
    `**Events in Kafka**, every record of the topic read back: ${clicksInKafka} click events for ${s.answered.clicks} redirects, ` +
      `${opensInKafka} open and initial_open events for ${s.answered.pixels} pixels (warm-up included)` +
      `${other.length ? `, and ${other.map(([type, n]) => `${n} of type ${type}`).join(', ')}` : ''}: **${complete ? 'all there' : 'NOT all there'}**. ` +
      `The tracker counted ${s.trackerCounted.events} events acknowledged by Kafka and ${s.trackerCounted.lost} lost.`, '',
    'Notes:', '', ...s.notes.map((n) => `- ${n}`), '',
  ].join('\n');
}
