// A retry record is the submission record again (same value, same headers) plus how many
// attempts were made, which recipients are left, and when the next attempt is due.
import type { RecordHeaders } from '../shared/queue.ts';

export const RETRY_HEADER = {
  attempts: 'mtrelay-attempts',
  only: 'mtrelay-only',
  notBefore: 'mtrelay-not-before',
} as const;

export interface RetryState {
  attempts: number;
  only?: string[];
  notBefore: number;
}

/** A first attempt has no retry headers: no attempts before, every recipient, due now. */
export function readRetryState(headers: RecordHeaders): RetryState {
  const only = headers[RETRY_HEADER.only];
  return {
    attempts: Number(headers[RETRY_HEADER.attempts] ?? 0),
    ...(only ? { only: JSON.parse(only) as string[] } : {}),
    notBefore: Number(headers[RETRY_HEADER.notBefore] ?? 0),
  };
}

export function retryHeaders(original: RecordHeaders, state: RetryState): RecordHeaders {
  const retryNames = new Set<string>(Object.values(RETRY_HEADER));
  const kept = Object.fromEntries(Object.entries(original).filter(([name]) => !retryNames.has(name)));
  return {
    ...kept,
    [RETRY_HEADER.attempts]: String(state.attempts),
    [RETRY_HEADER.only]: JSON.stringify(state.only ?? []),
    [RETRY_HEADER.notBefore]: String(state.notBefore),
  };
}
