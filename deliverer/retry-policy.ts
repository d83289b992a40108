// The retry ladder: a temporary failure waits on the next rung's topic, the last rung
// repeats, and once the message is older than the expiry the failure becomes a bounce.

export interface RetryPolicy {
  /** Delays in ms, one per rung, with the topic suffix of each (`1m`, `5m`, …). */
  rungs: { name: string; ms: number }[];
  expiryMs: number;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) throw new Error(`invalid duration "${value}" (expected e.g. 30s, 5m, 4h)`);
  return match[2] === 'ms' ? Number(match[1]) : Number(match[1]) * UNIT_MS[match[2]!]!;
}

export function retryPolicy(delays: string[], expiry: string): RetryPolicy {
  if (!delays.length) throw new Error('the retry ladder needs at least one delay');
  const rungs = delays.map((name) => ({ name, ms: parseDuration(name) }));
  if (rungs.some((r) => r.ms <= 0)) throw new Error('every delay of the retry ladder must be longer than 0');
  return { rungs, expiryMs: parseDuration(expiry) };
}

export type NextStep = { kind: 'retry'; rung: string; notBefore: number } | { kind: 'expire' };

/** What to do after attempt number `attempts` (1 = the first attempt) failed temporarily. */
export function nextStep(policy: RetryPolicy, attempts: number, receivedAt: number, now: number): NextStep {
  const rung = policy.rungs[Math.min(attempts - 1, policy.rungs.length - 1)]!;
  const notBefore = now + rung.ms;
  if (notBefore - receivedAt > policy.expiryMs) return { kind: 'expire' };
  return { kind: 'retry', rung: rung.name, notBefore };
}
