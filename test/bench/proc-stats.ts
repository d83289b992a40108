// Reads CPU time and memory of processes from Linux /proc, without extra tools.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat times (sysconf CLK_TCK; 100 on Linux). */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

interface StatFields {
  ppid: number;
  /** utime + stime of the process itself (all its threads), in ticks. */
  ownTicks: number;
  /** cutime + cstime: children that exited and were reaped by this process, in ticks. */
  reapedTicks: number;
}

function stat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined; // the process is gone
  }
  // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const at = (field: number) => Number(fields[field - 3]);
  return { ppid: at(4), ownTicks: at(14) + at(15), reapedTicks: at(16) + at(17) };
}

/** CPU seconds of a process, plus those of its children that already exited when `withReaped`. */
export function cpuSeconds(pid: number, withReaped = false): number {
  const s = stat(pid);
  if (!s) return 0;
  return (s.ownTicks + (withReaped ? s.reapedTicks : 0)) / clockTicks();
}

/** The live direct children of a process. */
export function childPids(parent: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (stat(Number(name))?.ppid === parent) children.push(Number(name));
  }
  return children;
}

function statusKb(pid: number, field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident set size now, in KiB. */
export const rssKb = (pid: number): number => statusKb(pid, 'VmRSS');
/** Peak resident set size over the process's life (VmHWM), in KiB. */
export const peakRssKb = (pid: number): number => statusKb(pid, 'VmHWM');

/** Proportional set size in KiB: shared pages split between the processes sharing them. */
export function pssKb(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** The soft and hard limits on open files of this process. */
export function openFileLimit(): { soft: number; hard: number } {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
  const parse = (v: string | undefined) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v ?? 1024));
  return { soft: parse(line?.[1]), hard: parse(line?.[2]) };
}

/** Ticks the whole machine spent busy and in total since boot, from /proc/stat's cpu line
 *  (idle and iowait count as not busy): two readings give how saturated the CPUs were. */
export function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((sum, n) => sum + n, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}
