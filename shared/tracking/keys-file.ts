// The tracking keys, from a file mounted from a Secret: one key a line, `<id> <base64 secret>`,
// the first line the newest. Tokens are signed with the first and verified with any, so a key
// keeps working for the links already sent until its line is removed. The deliverer and the
// tracker read the same file and follow it when it changes.
import { randomBytes } from 'node:crypto';
import { unwatchFile, watchFile, writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Role } from '../ops/role.ts';
import { keyRing, type TrackingKeyRing } from './tokens.ts';

export function readTrackingKeys(file: string): TrackingKeyRing {
  const lines = readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const keys = lines.map((line, index) => {
    const [id, secret, extra] = line.split(/\s+/);
    if (!id || !secret || extra !== undefined) throw new Error(`${file}, key ${index + 1}: expected "<id> <base64 secret>"`);
    return { id, secret: Buffer.from(secret, 'base64') };
  });
  try {
    return keyRing(keys);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** A line of a keys file: a new key with a random secret, its id from the date it was made. */
export function newTrackingKeyLine(now = new Date()): string {
  return `k${now.toISOString().slice(0, 10).replace(/-/g, '')} ${randomBytes(32).toString('base64')}`;
}

/** Writes a keys file with one new key (standalone's first start). */
export function writeNewTrackingKeys(file: string): void {
  writeFileSync(file, `# Tracking keys, newest first: "<id> <base64 secret>". Add a new line on top to rotate.\n${newTrackingKeyLine()}\n`, { mode: 0o600 });
}

/**
 * The keys in force, following the file: a rotated Secret shows up in the mounted file; a file
 * that does not read keeps the keys in force (and says so).
 */
export function watchTrackingKeys(file: string, role: Role, logger: Logger): () => TrackingKeyRing {
  let keys = readTrackingKeys(file);
  watchFile(file, { interval: 2000 }, () => {
    try {
      keys = readTrackingKeys(file);
      logger.info({ keys: [...keys.keys.keys()] }, 'tracking keys reloaded');
    } catch (error) {
      logger.error({ err: error }, 'tracking keys not reloaded; the previous ones stay in force');
    }
  });
  role.onStop('tracking keys file watch', () => unwatchFile(file));
  return () => keys;
}
