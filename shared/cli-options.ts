// Every flag of every subcommand is also an environment variable MTRELAY_<FLAG>
// (--tls-cert → MTRELAY_TLS_CERT), which is how the Helm chart configures pods.
import { InvalidArgumentError, Option } from 'commander';

export function envName(flag: string): string {
  return `MTRELAY_${flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`;
}

/** An option whose value may also come from MTRELAY_<FLAG>. */
export function option(flags: string, description: string): Option {
  const long = flags.split(/[ ,]+/).find((f) => f.startsWith('--'));
  if (!long) throw new Error(`option ${flags} has no long form`);
  return new Option(flags, description).env(envName(long));
}

export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

export function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}
