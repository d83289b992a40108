// Enough file descriptors for the idle-connection test: each idle connection is one fd in this
// process and one in the relay (which inherits our limit). Node raises its soft limit to the
// hard one at start-up but cannot raise the hard one; a shell's `ulimit -n` can (as root with
// CAP_SYS_RESOURCE), so the bench may run itself again under one.
import { spawn } from 'node:child_process';
import { openFileLimit } from './proc-stats.ts';

const GUARD = 'MTRELAY_BENCH_FD_RERUN'; // set on the re-run so it never loops

/** Returns undefined when the limit is fine (or cannot be raised: go on with fewer
 *  connections), else runs this script again under a higher limit and returns its exit code. */
export async function rerunWithHigherFdLimit(needed: number): Promise<number | undefined> {
  const { soft } = openFileLimit();
  if (soft >= needed || process.env[GUARD]) return undefined;
  const wanted = Math.max(needed, 65536);
  const script = `ulimit -n ${wanted} 2>/dev/null || exit 111; exec "$0" "$@"`;
  const child = spawn('sh', ['-c', script, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, [GUARD]: '1' },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
  return code === 111 ? undefined : code;
}

/** How many idle connections fit under the current limit, keeping 1000 fds spare. */
export function idleConnectionsAllowed(requested: number): { count: number; note?: string } {
  const { soft } = openFileLimit();
  if (requested + 1000 <= soft) return { count: requested };
  const count = Math.max(0, soft - 1000);
  return { count, note: `Open-files limit is ${soft} (could not be raised), so ${count} idle connections instead of ${requested}.` };
}
