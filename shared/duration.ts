// Durations as flags take them: 500ms, 30s, 5m, 4h, 3d.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) throw new Error(`invalid duration "${value}" (expected e.g. 30s, 5m, 4h)`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}
