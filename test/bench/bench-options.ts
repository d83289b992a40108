// Command-line flags of the benchmark and of the standalone load generator (no environment
// variables: everything is a flag with a default).
import { parseArgs } from 'node:util';

/** Flags both commands share: the shape of the load. */
const LOAD_OPTIONS = {
  connections: { type: 'string', default: '50' },
  messages: { type: 'string', default: '40' },
  'per-connection': { type: 'string' },
  size: { type: 'string', default: '4096' },
  auth: { type: 'boolean', default: true },
  starttls: { type: 'boolean', default: false },
  rate: { type: 'string' },
  idle: { type: 'string', default: '5000' },
  seconds: { type: 'string', default: '10' },
  help: { type: 'boolean', default: false },
} as const;

const LOAD_HELP = `  --connections N    concurrent SMTP clients (default 50)
  --messages M       messages per client in the closed loop (default 40)
  --per-connection P messages on one connection before a new one (default: all M)
  --size S           message size in bytes (default 4096)
  --auth/--no-auth   AUTH PLAIN (default on)
  --rate R           target messages/s of the open-loop phase
  --idle K           idle connections for the memory test (default 5000)
  --seconds T        length of the open-loop phase (default 10)`;

export function count(name: string, value: string | undefined, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${value}`);
  return n;
}

function optionalRate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0)) throw new Error(`--rate must be a positive number, got ${value}`);
  return n;
}

export interface LoadFlags {
  connections: number;
  messages: number;
  perConnection: number | undefined;
  size: number;
  auth: boolean;
  starttls: boolean;
  rate: number | undefined;
  idle: number;
  seconds: number;
}

function loadFlags(values: { connections: string; messages: string; 'per-connection'?: string | undefined; size: string; auth: boolean; starttls: boolean;
  rate?: string | undefined; idle: string; seconds: string }): LoadFlags {
  return {
    connections: count('connections', values.connections),
    messages: count('messages', values.messages),
    perConnection: values['per-connection'] === undefined ? undefined : count('per-connection', values['per-connection']),
    size: count('size', values.size, 512),
    auth: values.auth,
    starttls: values.starttls,
    rate: optionalRate(values.rate),
    idle: count('idle', values.idle, 0),
    seconds: count('seconds', values.seconds),
  };
}

export const BENCH_USAGE = `npm run bench:relay -- [flags]
${LOAD_HELP}
  --shapes LIST      long (M messages per connection), single (a connection per message), or
                     both, comma-separated (default long,single; --per-connection is ignored)
  --rounds R         closed loops per measured run, reported together (default 3)
  --starttls/--no-starttls   also run the informational mtrelay STARTTLS load (default on)
  --postfix/--no-postfix     also run the same load against a private Postfix (default on)
  --brokers N        1 (one broker, one replica) or 3 (three KRaft nodes, replication 3,
                     min.insync.replicas 2: the production shape) (default 1)
By default the open-loop rate is half the measured mtrelay peak.`;

export type Shape = 'long' | 'single';

export interface BenchFlags extends LoadFlags {
  rounds: number;
  brokers: 1 | 3;
  postfix: boolean;
  shapes: Shape[];
}

/** Flags of `npm run bench:relay`; undefined after printing the usage for --help. */
export function parseBenchFlags(argv: string[]): BenchFlags | undefined {
  const { values } = parseArgs({
    args: argv,
    allowNegative: true,
    options: {
      ...LOAD_OPTIONS,
      starttls: { type: 'boolean', default: true },
      postfix: { type: 'boolean', default: true },
      rounds: { type: 'string', default: '3' },
      shapes: { type: 'string', default: 'long,single' },
      brokers: { type: 'string', default: '1' },
    },
  });
  if (values.help) {
    process.stdout.write(`${BENCH_USAGE}\n`);
    return undefined;
  }
  const shapes = values.shapes.split(',').map((s) => s.trim());
  for (const shape of shapes) if (shape !== 'long' && shape !== 'single') throw new Error(`--shapes takes long and single, got ${shape}`);
  if (values.brokers !== '1' && values.brokers !== '3') throw new Error(`--brokers takes 1 or 3, got ${values.brokers}`);
  return { ...loadFlags(values), rounds: count('rounds', values.rounds), postfix: values.postfix, shapes: shapes as Shape[], brokers: Number(values.brokers) as 1 | 3 };
}

export interface GeneratorFlags extends LoadFlags {
  mode: 'closed' | 'open' | 'idle';
  host: string;
  port: number;
  user: string;
  password: string;
  ca: string | undefined;
  servername: string;
  from: string;
  to: string;
}

const GENERATOR_USAGE = `node test/bench/load-generator.ts --port P [flags]
  --mode closed|open|idle  closed loop (default), open loop at --rate, or hold --idle connections
  --host H --port P        the SMTP server (host default 127.0.0.1)
  --user U --password K    AUTH PLAIN credentials (user default smtp_mt_injection)
  --starttls --ca FILE     STARTTLS trusting this CA (name checked: --servername, default localhost)
  --from A --to B          envelope and header addresses
${LOAD_HELP}`;

/** Flags of the standalone load generator. */
export function parseGeneratorFlags(argv: string[]): GeneratorFlags {
  const { values } = parseArgs({
    args: argv,
    allowNegative: true,
    options: {
      ...LOAD_OPTIONS,
      mode: { type: 'string', default: 'closed' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      user: { type: 'string', default: 'smtp_mt_injection' },
      password: { type: 'string', default: '' },
      ca: { type: 'string' },
      servername: { type: 'string', default: 'localhost' },
      from: { type: 'string', default: 'sender@example.com' },
      to: { type: 'string', default: 'someone@recipient.test' },
    },
  });
  if (values.help) {
    process.stdout.write(`${GENERATOR_USAGE}\n`);
    process.exit(0);
  }
  const mode = values.mode;
  if (mode !== 'closed' && mode !== 'open' && mode !== 'idle') throw new Error(`--mode must be closed, open or idle, got ${mode}`);
  const load = loadFlags(values);
  if (mode === 'open' && load.rate === undefined) throw new Error('--mode open needs --rate');
  if (load.starttls && !values.ca) throw new Error('--starttls needs --ca (the CA that signed the server certificate)');
  return {
    ...load, mode, host: values.host, port: count('port', values.port), user: values.user, password: values.password,
    ca: values.ca, servername: values.servername, from: values.from, to: values.to,
  };
}
