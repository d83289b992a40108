// A mailbox provider under pressure, for the test and benchmark sinks: a token bucket holding
// one second's messages, and Gmail's reply to a sender beyond it.
import { performance } from 'node:perf_hooks';

export const THROTTLING_TEXT = 'Our system has detected an unusual rate of unsolicited mail originating from your IP address; rate limited, try again later';

/** Whether one more message may start now, at `perSecond`. */
export function tokenBucket(perSecond: number): () => boolean {
  let tokens = perSecond;
  let refilled = performance.now();
  return () => {
    const now = performance.now();
    tokens = Math.min(perSecond, tokens + ((now - refilled) / 1000) * perSecond);
    refilled = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}
