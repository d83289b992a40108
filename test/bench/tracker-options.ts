// Command-line flags of `npm run bench:tracker` (every knob a flag with a default, printed with --help).
import { parseArgs } from 'node:util';
import { count } from './bench-options.ts';

export const TRACKER_USAGE = `npm run bench:tracker -- [flags]
  --tokens N            signed click tokens, and as many pixel tokens (half open, half
                        initial_open), taken in turn by the load (default 4000)
  --concurrency C       requests in flight at once, each on its keep-alive connection (default 64)
  --requests N          requests of each measured phase at most (default 200000)
  --seconds T           and no request started after T seconds of a phase (default 20)
  --warmup N            requests first, clicks and pixels alternating, not counted (default 20000)
  --rate R              requests/s of the fixed-rate phase (clicks and pixels alternating),
                        0 to skip it (default 2000)
  --rate-seconds T      length of the fixed-rate phase (default 10)
  --tracker-cpus L      taskset CPU list of the tracker (default 0)
  --load-cpus L         taskset CPU list of the load generator (default 1)
  --broker-cpus L       taskset CPU list of the Kafka broker, '' to leave it free (default 1: beside
                        the load generator, so the tracker has its core alone)`;

export interface TrackerFlags {
  tokens: number;
  concurrency: number;
  requests: number;
  seconds: number;
  warmup: number;
  /** Requests/s of the fixed-rate phase; 0: no such phase. */
  rate: number;
  rateSeconds: number;
  trackerCpus: string;
  loadCpus: string;
  /** '' leaves the broker unpinned. */
  brokerCpus: string;
}

function cpuList(name: string, value: string, empty = false): string {
  if ((empty && value === '') || /^\d+([-,]\d+)*$/.test(value)) return value;
  throw new Error(`--${name} must be a CPU list such as 0 or 0-1 or 0,2, got ${JSON.stringify(value)}`);
}

/** The flags, or undefined after printing the usage for --help. */
export function parseTrackerFlags(argv: string[]): TrackerFlags | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      tokens: { type: 'string', default: '4000' },
      concurrency: { type: 'string', default: '64' },
      requests: { type: 'string', default: '200000' },
      seconds: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '20000' },
      rate: { type: 'string', default: '2000' },
      'rate-seconds': { type: 'string', default: '10' },
      'tracker-cpus': { type: 'string', default: '0' },
      'load-cpus': { type: 'string', default: '1' },
      'broker-cpus': { type: 'string', default: '1' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${TRACKER_USAGE}\n`);
    return undefined;
  }
  return {
    tokens: count('tokens', values.tokens),
    concurrency: count('concurrency', values.concurrency),
    requests: count('requests', values.requests),
    seconds: count('seconds', values.seconds),
    warmup: count('warmup', values.warmup, 0),
    rate: count('rate', values.rate, 0),
    rateSeconds: count('rate-seconds', values['rate-seconds']),
    trackerCpus: cpuList('tracker-cpus', values['tracker-cpus']),
    loadCpus: cpuList('load-cpus', values['load-cpus']),
    brokerCpus: cpuList('broker-cpus', values['broker-cpus'], true),
  };
}
