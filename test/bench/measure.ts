// One measured run: a warm-up round that is not counted (JIT of the relay and of the freshly
// started Kafka JVM, Kafka metadata, Postfix spawning its smtpd and cleanup processes), then a few rounds of the closed loop (one round
// of the defaults lasts about a second: too short alone for steady CPU figures), with the
// server's CPU and memory metered over exactly those rounds.
import { mergeResults, runClosedLoop, type LoadOptions, type LoadResult } from './load-generator.ts';
import { UsageMeter } from './process-usage.ts';
import type { RunRow } from './report.ts';
import type { SmtpTarget } from './smtp-connection.ts';

export interface Server {
  /** The process, or the master of the processes, that does the server's work. */
  pid: number;
  /** Count the live and exited children of `pid` too (Postfix). */
  withChildren: boolean;
  /** Other processes whose CPU is reported beside the server's (the Kafka brokers). */
  sidecarPids?: number[];
  /** Waits, after the last reply, for work the server still owes (Postfix: emptying its queue). */
  settle?: () => Promise<void>;
}

/** Warm-up, then `rounds` closed loops back to back, metered and reported as one. */
export async function measureRun(name: string, server: Server, target: SmtpTarget, load: LoadOptions, rounds: number): Promise<RunRow> {
  const warmup = await runClosedLoop(target, load);
  if (warmup.accepted === 0) {
    throw new Error(`${name}: the warm-up got no 250 (refused ${JSON.stringify(warmup.refused)}, ` +
      `errors ${warmup.errors}${warmup.firstError ? `: ${warmup.firstError}` : ''})`);
  }
  const meter = new UsageMeter(server.pid, server.withChildren).start();
  const sidecars = (server.sidecarPids ?? []).map((pid) => new UsageMeter(pid, false).start());
  const client = process.cpuUsage(); // this process: load generator, relay log reader, meters
  const results: LoadResult[] = [];
  for (let round = 0; round < rounds; round++) results.push(await runClosedLoop(target, load));
  await server.settle?.();
  const result = mergeResults(results);
  const usage = meter.stop();
  const sidecarCpu = sidecars.length ? sidecars.map((m) => m.stop().cpuSeconds).reduce((a, b) => a + b, 0) : undefined;
  const clientUsage = process.cpuUsage(client);
  const clientCpuSeconds = (clientUsage.user + clientUsage.system) / 1e6;
  return { name, load: result, usage, clientCpuSeconds, ...(sidecarCpu !== undefined ? { kafkaCpuSeconds: sidecarCpu } : {}) };
}
