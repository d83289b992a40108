// Hashes and canonical JSON: what the relay needs to check a key (a SHA-256) and what
// everyone needs to tell two configs apart, without loading the compiler or its schemas.
import { createHash } from 'node:crypto';

export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

/** The first characters of a key: enough to tell keys apart in status and logs, never enough to use. */
export function apiKeyPrefix(key: string): string {
  return key.slice(0, 6);
}

/** Sorted-key JSON, so that equal content always hashes to the same revision. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v);
}
