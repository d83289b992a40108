// The retry ladder: a temporary failure waits on the next rung's topic, the last rung
// repeats, and once the message is older than the expiry the failure becomes a bounce.
import { parseDuration } from '../shared/duration.ts';

export interface RetryPolicy {
  /** Delays in ms, one per rung, with the topic suffix of each (`1m`, `5m`, …). */
  rungs: { name: string; ms: number }[];
  expiryMs: number;
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
