// One end-to-end scenario: a warm-up load that must be fully delivered and is not counted (JIT
// of Node and of a freshly started Kafka JVM, the consumer group join, Postfix spawning its
// smtpd, cleanup and smtp processes); the measured closed loop, which ends when the last
// accepted message reached the sink; then an open loop at a fixed rate below every system's
// capacity, whose accept → deliver latency is not just the backlog a closed loop builds up.
import { DeliveryTracker, type DeliveryResult } from './delivery-tracker.ts';
import type { CountingSink } from './counting-sink.ts';
import type { SystemUnderTest } from './e2e-systems.ts';
import { runClosedLoop, runOpenLoop, type LoadOptions, type LoadResult } from './load-generator.ts';
import { machineTicks } from './proc-stats.ts';
import { UsageMeter } from './process-usage.ts';

export interface Cpu {
  /** The server's processes, together. */
  serverSeconds: number;
  /** The same, process by process (Kafka mode: relay and deliverer), with each one's peak resident memory. */
  serverParts: { label: string; seconds: number; peakRssKb: number }[];
  brokerSeconds?: number;
  brokerPeakRssKb?: number;
  /** This process: the load generator, the sink, reading mtrelay's logs, the meters. */
  benchSeconds: number;
  /** Share of all CPUs busy (any process): near 1, the machine itself was the limit. */
  machineBusy: number;
}

export interface OpenLoopDelivery {
  rate: number;
  seconds: number;
  attempted: number;
  delivery: DeliveryResult;
  allDelivered: boolean;
  cpu: Cpu;
}

export interface E2eRow {
  name: string;
  /** Bytes per message of this run. */
  size: number;
  /** The measured closed loop as the load generator saw it (accepted msgs/s, reply latency). */
  load: LoadResult;
  delivery: DeliveryResult;
  /** False when some accepted message had not reached the sink by the deadline. */
  allDelivered: boolean;
  cpu: Cpu;
  open?: OpenLoopDelivery;
  /** What the sink counted of this system's messages over its whole run (warm-up, full load, fixed rate). */
  arrivals?: Arrivals;
}

export interface Arrivals {
  messages: number;
  signed: number;
  /** Messages that held the tracking host at least once. */
  tracked: number;
  /** The tracking host's occurrences in them (a lower bound: a soft line break can split one). */
  trackingUrls: number;
}

export interface Plan {
  load: LoadOptions;
  warmup?: LoadOptions;
  open?: { rate: number; seconds: number };
  /** How long to wait, after a load, for its last delivery. */
  timeoutMs: number;
}

/** CPU of everything involved, from start() until the returned stop(). */
function meterCpu(system: SystemUnderTest): () => Cpu {
  const meters = system.server.map((s) => new UsageMeter(s.pid, s.withChildren).start());
  const broker = system.brokerPid ? new UsageMeter(system.brokerPid, false).start() : undefined;
  const bench = process.cpuUsage();
  const machine = machineTicks();
  return () => {
    const serverParts = meters.map((m, i) => {
      const usage = m.stop();
      return { label: system.server[i]!.label, seconds: usage.cpuSeconds, peakRssKb: usage.peakRssKb };
    });
    const brokerUsage = broker?.stop();
    const brokerSeconds = brokerUsage?.cpuSeconds;
    const benchUsage = process.cpuUsage(bench);
    const machineEnd = machineTicks();
    return {
      serverSeconds: serverParts.reduce((sum, p) => sum + p.seconds, 0), serverParts,
      ...(brokerUsage ? { brokerSeconds, brokerPeakRssKb: brokerUsage.peakRssKb } : {}),
      benchSeconds: (benchUsage.user + benchUsage.system) / 1e6,
      machineBusy: (machineEnd.busy - machine.busy) / (machineEnd.total - machine.total),
    };
  };
}

/** Runs a load through the system, then waits (at most `timeoutMs`) for all of it at the sink
 *  and for the server to finish its own work on it; CPU is metered over all of that. */
async function deliver(system: SystemUnderTest, sink: CountingSink, timeoutMs: number, load: (onAccepted: LoadOptions['onAccepted']) => Promise<LoadResult>) {
  const tracker = new DeliveryTracker();
  sink.onMessage = tracker.arrived;
  const stopMeters = meterCpu(system);
  const result = await load(tracker.accepted);
  const allDelivered = await tracker.allDelivered(timeoutMs);
  await system.settle();
  return { result, delivery: tracker.result(), allDelivered, missing: tracker.missing, cpu: stopMeters() };
}

export async function measureEndToEnd(system: SystemUnderTest, sink: CountingSink, plan: Plan): Promise<E2eRow> {
  if (plan.warmup) {
    const warmup = plan.warmup;
    const { result, allDelivered, missing } = await deliver(system, sink, plan.timeoutMs, (onAccepted) => runClosedLoop(system.target, { ...warmup, onAccepted }));
    if (result.accepted === 0 || !allDelivered) {
      throw new Error(`${system.name}: warm-up: ${result.accepted} of ${result.attempted} accepted (errors ${result.errors}` +
        `${result.firstError ? `: ${result.firstError}` : ''}), ${missing} of them not delivered within ${plan.timeoutMs / 1000} s`);
    }
  }
  const closed = await deliver(system, sink, plan.timeoutMs, (onAccepted) => runClosedLoop(system.target, { ...plan.load, onAccepted }));
  const row: E2eRow = { name: system.name, size: plan.load.size, load: closed.result, delivery: closed.delivery, allDelivered: closed.allDelivered, cpu: closed.cpu };
  if (plan.open) {
    const { rate, seconds } = plan.open;
    const open = await deliver(system, sink, plan.timeoutMs, (onAccepted) => runOpenLoop(system.target, { ...plan.load, rate, seconds, onAccepted }));
    row.open = { rate, seconds, attempted: open.result.attempted, delivery: open.delivery, allDelivered: open.allDelivered, cpu: open.cpu };
  }
  return row;
}
