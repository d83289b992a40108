// Open and click tracking in the end-to-end benchmark (--html, --tracking): which runs each
// mtrelay mode makes, the account that asks for tracking, the notes, and the table that puts a
// tracked run next to the untracked run of the same HTML messages and next to Postfix, which
// does not track and is the baseline of both.
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { E2eRow } from './e2e-measure.ts';
import type { E2eFlags } from './e2e-options.ts';
import { TRACKED_LINKS } from './html-message.ts';
import { fixed, perThousand } from './report.ts';

/** Where tracked links and pixels point. Nothing fetches them; the sink counts them. */
export const TRACKING_HOST = 'track.bench.test';
export const TRACKING_URL = `https://${TRACKING_HOST}`;
/** What the project asks of tracking: it costs less than this share of delivered msgs/s. */
const GOAL_COST = 0.3;

/** One run of an mtrelay mode: tracked or not, and what to call it. */
export interface Variant {
  tracked: boolean;
  label?: string;
}

export function trackingVariants(flags: E2eFlags): Variant[] {
  if (!flags.html && !flags.tracking) return [{ tracked: false }];
  return [
    ...(flags.html ? [{ tracked: false, label: 'untracked' }] : []),
    ...(flags.tracking ? [{ tracked: true, label: 'tracking opens and clicks' }] : []),
  ];
}

/** A copy of the account's folder whose AccountSettings turn opens and clicks on; returns it. */
export function trackedAccountFolder(plain: string, dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  cpSync(plain, dir, { recursive: true });
  writeFileSync(path.join(dir, 'settings.yaml'),
    'apiVersion: mtrelay.dev/v1alpha1\nkind: AccountSettings\nmetadata: {name: default, namespace: acme}\nspec: {tracking: {opens: true, clicks: true}}\n');
  return dir;
}

export function trackingNotes(flags: E2eFlags): string[] {
  return [
    `Tracking: every mtrelay run gets --tracking-keys (one key) and --tracking-url ${TRACKING_URL}; in the tracked runs the account's ` +
      'AccountSettings (spec.tracking: opens and clicks) asks for tracking, in the untracked runs nothing does, so the messages, ' +
      `flags and processes are the same. A tracked copy has its ${TRACKED_LINKS} links rewritten and two pixels added, each with its own ` +
      'signed token, its HTML part encoded again, and its own DKIM body hash.',
    `The sink counts, in each message, the occurrences of ${TRACKING_HOST}: a tracked run passes only if every message it delivered ` +
      'held it, an untracked one only if none did. Quoted-printable soft line breaks split some occurrences, so their count a message ' +
      `is below the ${TRACKED_LINKS + 2} links and pixels.`,
    ...(flags.html && flags.tracking ? [] : ['Only one of --html and --tracking was given: the cost of tracking needs both (same run, same machine).']),
  ];
}

const systemCpu = (r: E2eRow, open = false) => {
  const cpu = open ? r.open?.cpu : r.cpu;
  const messages = open ? r.open?.delivery.delivered : r.delivery.delivered;
  return cpu && messages ? perThousand(cpu.serverSeconds + (cpu.brokerSeconds ?? 0), messages) : Number.NaN;
};

/** CPU of the process that tracks (the deliverer, or standalone as a whole), s per 1000 messages. */
const delivererCpu = (r: E2eRow) => {
  const part = r.cpu.serverParts.find((p) => p.label === 'deliverer') ?? r.cpu.serverParts[0];
  return part ? perThousand(part.seconds, r.delivery.delivered) : Number.NaN;
};

const change = (before: number, after: number) => `${fixed(before, 3)} → ${fixed(after, 3)} (${after >= before ? '+' : ''}${fixed((after / before - 1) * 100, 0)}%)`;

/** Why a pair of runs cannot be judged, or undefined when it can. */
function unjudged(plain: E2eRow, tracked: E2eRow): string | undefined {
  if (!plain.allDelivered || !tracked.allDelivered) return 'not judged: some accepted messages were not delivered';
  const t = tracked.arrivals;
  if (!t || t.tracked < t.messages) return `not judged: only ${t?.tracked ?? 0} of ${t?.messages ?? '?'} messages arrived tracked`;
  if ((plain.arrivals?.tracked ?? 0) > 0) return `not judged: ${plain.arrivals!.tracked} messages of the untracked run arrived tracked`;
  return undefined;
}

function row(label: string, plain: E2eRow | undefined, tracked: E2eRow | undefined, postfix: E2eRow | undefined): string {
  const rate = (r: E2eRow | undefined) => (r ? fixed(r.delivery.rate, 0) : '–');
  const ratio = (r: E2eRow | undefined) => (r && postfix ? `${fixed(r.delivery.rate / postfix.delivery.rate, 2)}×` : '–');
  const both = plain && tracked;
  const cost = both ? 1 - tracked.delivery.rate / plain.delivery.rate : Number.NaN;
  const arrived = (r: E2eRow | undefined) => (r?.arrivals ? `${r.arrivals.tracked} / ${r.arrivals.messages}` : '–');
  const verdict = !both ? '–' : unjudged(plain, tracked) ?? (cost < GOAL_COST ? '**met**' : '**not met**');
  const fixedRate = both && plain.open && tracked.open ? change(systemCpu(plain, true), systemCpu(tracked, true)) : '–';
  return `| ${label} | ${rate(plain)} | **${rate(tracked)}** | ${both ? `**${fixed(cost * 100, 0)}%**` : '–'} | ${ratio(plain)} | ${ratio(tracked)} | ` +
    `${both ? change(systemCpu(plain), systemCpu(tracked)) : '–'} | ${both ? change(delivererCpu(plain), delivererCpu(tracked)) : '–'} | ${fixedRate} | ` +
    `${arrived(plain)} | ${arrived(tracked)} | ${verdict} |`;
}

/** The tracking table of one size's runs, or nothing when no run tracked. */
export function trackingTable(runs: { kafka?: E2eRow; kafkaTracked?: E2eRow; standalone?: E2eRow; standaloneTracked?: E2eRow; postfix?: E2eRow }): string[] {
  if (!runs.kafkaTracked && !runs.standaloneTracked) return [];
  return [
    `**Open and click tracking** (the same HTML newsletters; delivered msgs/s at full load; cost = 1 − tracked ÷ untracked; goal: under ${GOAL_COST * 100}%):`, '',
    '| mtrelay mode | untracked msgs/s | tracked msgs/s | cost of tracking | untracked ÷ Postfix | tracked ÷ Postfix | ' +
      'server + Kafka CPU s / 1000 msgs, untracked → tracked | deliverer CPU s / 1000 msgs | the same at the fixed rate (server + Kafka) | ' +
      'arrived tracked, untracked run | arrived tracked, tracked run | goal |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...(runs.kafkaTracked || runs.kafka ? [row('Kafka mode (relay + deliverer + broker)', runs.kafka, runs.kafkaTracked, runs.postfix)] : []),
    ...(runs.standaloneTracked || runs.standalone ? [row('standalone', runs.standalone, runs.standaloneTracked, runs.postfix)] : []),
    '',
  ];
}
