// A retry record is the submission record again (same value, same headers) plus how many
// attempts were made, which recipients are left, and when the next attempt is due.
import type { IHeaders } from 'kafkajs';

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

function first(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  const f = Array.isArray(v) ? v[0] : v;
  return f === undefined ? undefined : f.toString();
}

export function readRetryState(headers: IHeaders | undefined): RetryState {
  const only = first(headers, RETRY_HEADER.only);
  return {
    attempts: Number(first(headers, RETRY_HEADER.attempts) ?? 0),
    ...(only ? { only: JSON.parse(only) as string[] } : {}),
    notBefore: Number(first(headers, RETRY_HEADER.notBefore) ?? 0),
  };
}

export function retryHeaders(original: IHeaders | undefined, state: RetryState): IHeaders {
  const kept = Object.fromEntries(Object.entries(original ?? {}).filter(([k]) => !Object.values(RETRY_HEADER).includes(k as never)));
  return {
    ...kept,
    [RETRY_HEADER.attempts]: String(state.attempts),
    [RETRY_HEADER.only]: JSON.stringify(state.only ?? []),
    [RETRY_HEADER.notBefore]: String(state.notBefore),
  };
}
