// Command-line flags of `npm run bench:cluster` (every knob a flag with a default, printed with --help).
import { parseArgs } from 'node:util';
import { count } from './bench-options.ts';

export const CLUSTER_USAGE = `npm run bench:cluster -- [flags]
  --messages N          messages in the measured full load (default 3000)
  --connections C       concurrent SMTP connections of the load (default 50)
  --size S              bytes per message (default 4096)
  --warmup W            messages sent and delivered first, not counted (default 1000)
  --rate R              messages/s of the fixed-rate phase, 0 to skip it (default 100)
  --seconds T           length of the fixed-rate phase (default 10)
  --replicas P          relay pods and deliverer pods, autoscaling off (default 1: as many
                        processes as bench:e2e's Kafka mode runs)
  --out-connections K   the deliverer's --connections-per-destination (default 20)
  --max-in-flight F     the deliverer's --max-in-flight (default 200)
  --deliver-timeout T   seconds to wait, after the load, for the last delivery (default 120)
  --process/--no-process  also run bench:e2e's Kafka mode (relay, deliverer and broker as
                        processes) in the same run, for the ratio (default on)`;

export interface ClusterFlags {
  messages: number;
  connections: number;
  size: number;
  warmup: number;
  rate: number;
  seconds: number;
  replicas: number;
  outConnections: number;
  maxInFlight: number;
  deliverTimeoutSeconds: number;
  process: boolean;
}

/** The flags, or undefined after printing the usage for --help. */
export function parseClusterFlags(argv: string[]): ClusterFlags | undefined {
  const { values } = parseArgs({
    args: argv,
    allowNegative: true,
    options: {
      messages: { type: 'string', default: '3000' },
      connections: { type: 'string', default: '50' },
      size: { type: 'string', default: '4096' },
      warmup: { type: 'string', default: '1000' },
      rate: { type: 'string', default: '100' },
      seconds: { type: 'string', default: '10' },
      replicas: { type: 'string', default: '1' },
      'out-connections': { type: 'string', default: '20' },
      'max-in-flight': { type: 'string', default: '200' },
      'deliver-timeout': { type: 'string', default: '120' },
      process: { type: 'boolean', default: true },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${CLUSTER_USAGE}\n`);
    return undefined;
  }
  return {
    messages: count('messages', values.messages),
    connections: count('connections', values.connections),
    size: count('size', values.size, 512),
    warmup: count('warmup', values.warmup, 0),
    rate: count('rate', values.rate, 0),
    seconds: count('seconds', values.seconds),
    replicas: count('replicas', values.replicas),
    outConnections: count('out-connections', values['out-connections']),
    maxInFlight: count('max-in-flight', values['max-in-flight']),
    deliverTimeoutSeconds: count('deliver-timeout', values['deliver-timeout']),
    process: values.process,
  };
}
