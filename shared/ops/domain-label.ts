// Domains as metric label values, bounded however many domains outsiders make us see.

/**
 * A domain as a label value. Domains come from outside (a returned original, a recipient's
 * address): past the first 1000 this process has seen, the rest share "other", so no one can
 * grow the number of series without bound.
 */
export function domainLabel(seen: Set<string>, domain: string | undefined, max = 1000): string {
  const value = domain || 'unknown';
  if (seen.has(value)) return value;
  if (seen.size >= max) return 'other';
  seen.add(value);
  return value;
}
