// A few lines saying what ran where, for a benchmark summary: numbers from another commit, a
// 2-CPU VM or a 32-core server are not comparable.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { KAFKA_VERSION, repoRoot } from '../kafka/broker.ts';

export function postfixVersion(): string {
  try {
    return execFileSync('postconf', ['-h', 'mail_version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'not installed';
  }
}

/** The commit measured, marked when the working tree had changes: numbers belong to code. */
export function revision(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const changed = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8' })
      .split('\n').filter(Boolean).map((line) => line.slice(3)); // 'XY path'
    if (!changed.length) return head;
    const folders = [...new Set(changed.map((file) => path.dirname(file)))];
    return `${head}, with uncommitted changes in ${folders.join(', ')}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

export function machine(): string[] {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return [
    `Code: commit ${revision()}`,
    `Machine: ${os.availableParallelism()} CPUs (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${os.release()}`,
    `Node ${process.version}; Kafka ${KAFKA_VERSION} (KRaft, on this machine: see the load line for how many brokers); Postfix ${postfixVersion()}`,
    // Other work on the machine skews every number; this at least shows whether some was running.
    `Load average at the start: ${os.loadavg().map((l) => l.toFixed(2)).join(', ')} (1, 5, 15 min)`,
  ];
}
