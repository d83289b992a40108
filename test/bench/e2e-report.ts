// The end-to-end benchmark's summary as Markdown: one row per system at full load, the
// latency at a fixed rate, the delivered-rate ratios against Postfix with the project's goals,
// and the notes needed to judge them.
import type { Cpu, E2eRow } from './e2e-measure.ts';
import { trackingTable } from './e2e-tracking.ts';
import { fixed, perThousand } from './report.ts';

/** Every system's run at one message size. */
export interface SizeResult {
  size: number;
  rows: E2eRow[];
  kafka?: E2eRow;
  standalone?: E2eRow;
  postfix?: E2eRow;
  /** The same modes with open and click tracking (--tracking). */
  kafkaTracked?: E2eRow;
  standaloneTracked?: E2eRow;
}

export interface E2eSummary {
  startedAt: Date;
  machine: string[];
  load: string;
  sizes: SizeResult[];
  notes: string[];
}

const sizeLabel = (bytes: number) => (bytes >= 1024 * 1024 ? `${fixed(bytes / 1024 / 1024, 0)} MB` : `${fixed(bytes / 1024, 0)} KB`);
const mib = (kb: number | undefined) => (kb === undefined ? '–' : fixed(kb / 1024, 0));

/** Peak resident memory per process: 'relay 210, deliverer 340, broker 700'. */
function peakMemory(cpu: Cpu): string {
  return [...cpu.serverParts.map((p) => `${p.label} ${mib(p.peakRssKb)}`), ...(cpu.brokerPeakRssKb === undefined ? [] : [`broker ${mib(cpu.brokerPeakRssKb)}`])].join(', ');
}

const per = (seconds: number | undefined, messages: number) => (seconds === undefined ? '–' : fixed(perThousand(seconds, messages), 3));

/** Server CPU per 1000 messages, split by process when there are several: '1.05 (relay 0.35, deliverer 0.70)'. */
function serverCpu(cpu: Cpu, messages: number): string {
  const total = per(cpu.serverSeconds, messages);
  if (cpu.serverParts.length < 2) return total;
  return `${total} (${cpu.serverParts.map((p) => `${p.label} ${per(p.seconds, messages)}`).join(', ')})`;
}

/** Everything the system itself costs per 1000 messages: its processes and the broker. */
const systemCpu = (cpu: Cpu, messages: number) => perThousand(cpu.serverSeconds + (cpu.brokerSeconds ?? 0), messages);

/** One line for the console. */
export function describeE2e(r: E2eRow): string {
  const d = r.delivery;
  const lines = [
    `${d.delivered}/${r.load.accepted} accepted messages delivered (${r.load.attempted - r.load.accepted} not accepted, ` +
      `${d.duplicates} duplicates${r.load.firstError ? `, first error: ${r.load.firstError}` : ''}); ${fixed(d.rate, 0)} delivered msgs/s ` +
      `(accepted ${fixed(r.load.rate, 0)}/s); accept → deliver p50 ${fixed(d.latency.p50, 0)} ms; server CPU ${serverCpu(r.cpu, d.delivered)} ` +
      `s/1000${r.cpu.brokerSeconds === undefined ? '' : `, Kafka ${per(r.cpu.brokerSeconds, d.delivered)}`}; machine ${fixed(r.cpu.machineBusy * 100, 0)}% busy`,
  ];
  if (r.open) {
    const o = r.open.delivery;
    lines.push(`open loop at ${r.open.rate}/s: ${o.delivered}/${r.open.attempted} delivered; accept → deliver p50 ${fixed(o.latency.p50, 1)} ms, ` +
      `p99 ${fixed(o.latency.p99, 1)} ms`);
  }
  return lines.join('\n  ');
}

function fullLoadRow(r: E2eRow): string {
  const d = r.delivery;
  return `| ${r.name} | ${r.load.accepted} / ${r.load.attempted - r.load.accepted} | ${d.delivered}${d.duplicates ? ` (+${d.duplicates} dup.)` : ''} | ` +
    `**${fixed(d.rate, 0)}** | ${fixed((d.rate * r.size) / 1024 / 1024, 1)} | ${fixed(r.load.rate, 0)} | ${fixed(d.latency.p50, 0)} | ${fixed(d.latency.p99, 0)} | ` +
    `${serverCpu(r.cpu, d.delivered)} | ${per(r.cpu.brokerSeconds, d.delivered)} | ${per(r.cpu.benchSeconds, d.delivered)} | ${fixed(r.cpu.machineBusy * 100, 0)} | ` +
    `${peakMemory(r.cpu)} |`;
}

function openLoopRow(r: E2eRow): string {
  const o = r.open!;
  const d = o.delivery;
  return `| ${r.name} | ${d.delivered} / ${o.attempted} | ${fixed(d.latency.p50, 1)} | ${fixed(d.latency.p99, 1)} | ${fixed(d.latency.max, 1)} | ` +
    `${fixed(systemCpu(o.cpu, d.delivered), 3)}${o.cpu.brokerSeconds === undefined ? '' : ` (Kafka ${per(o.cpu.brokerSeconds, d.delivered)})`} | ` +
    `${fixed(o.cpu.machineBusy * 100, 0)} |`;
}

function goal(label: string, mtrelay: E2eRow | undefined, postfix: E2eRow | undefined, target: number): string | undefined {
  if (!mtrelay || !postfix) return undefined;
  const ratio = mtrelay.delivery.rate / postfix.delivery.rate;
  const complete = mtrelay.allDelivered && postfix.allDelivered;
  const verdict = !complete ? 'not judged: some accepted messages were not delivered' : ratio >= target ? '**met**' : '**not met**';
  const cpuRatio = systemCpu(mtrelay.cpu, mtrelay.delivery.delivered) / systemCpu(postfix.cpu, postfix.delivery.delivered);
  return `| ${label} | ${fixed(ratio, 2)}× | ≥ ${target}× | ${verdict} | ${fixed(cpuRatio, 2)}× |`;
}

export function renderE2eSummary(s: E2eSummary): string {
  const lines = [
    `# mtrelay end-to-end benchmark, ${s.startedAt.toISOString()}`, '',
    ...s.machine.map((m) => `- ${m}`), `- Load: ${s.load}`, '',
  ];
  for (const size of s.sizes) {
    lines.push(
      `## ${sizeLabel(size.size)} messages`, '',
      '**Full load** (closed loop):', '',
      '| System | 250 / other | delivered | delivered msgs/s | delivered MB/s | accepted msgs/s | accept → deliver p50 ms | p99 ms | ' +
        'server CPU s / 1000 msgs | Kafka CPU s / 1000 msgs | bench process CPU s / 1000 msgs | machine CPU busy % | peak RSS MiB |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...size.rows.map(fullLoadRow), '',
    );
    const open = size.rows.filter((r) => r.open);
    if (open.length) {
      lines.push(
        `**Fixed rate** (open loop, ${open[0]!.open!.rate} msgs/s for ${open[0]!.open!.seconds} s, below every system's capacity):`, '',
        '| System | delivered / sent | accept → deliver p50 ms | p99 ms | max ms | server + Kafka CPU s / 1000 msgs | machine CPU busy % |',
        '|---|---|---|---|---|---|---|',
        ...open.map(openLoopRow), '',
      );
    }
    const large = size.size >= 1024 * 1024;
    const goals = [
      goal('Kafka mode (relay + deliverer + broker) ÷ Postfix', size.kafka, size.postfix, large ? 1 : size.size >= 102_400 ? 1.5 : 1),
      goal('standalone ÷ Postfix', size.standalone, size.postfix, large ? 1 : 1.5),
    ].filter((g) => g !== undefined);
    if (goals.length) {
      lines.push(
        `**Goals** at ${sizeLabel(size.size)} (delivered msgs/s, which at one size is also MB/s, at full load):`, '',
        '| | ratio | goal | result | CPU per message ÷ Postfix\'s (broker included) |', '|---|---|---|---|---|',
        ...goals, '',
      );
    }
    lines.push(...trackingTable(size));
  }
  lines.push('Notes:', '', ...s.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}
