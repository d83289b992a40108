// The tracking keys, from a file mounted from a Secret: one key a line, `<id> <base64 secret>`,
// the first line the newest. The tracker verifies with every key in the file, so a key keeps
// working for the links already sent until its line is removed.
import { readFileSync } from 'node:fs';
import { keyRing, type TrackingKeyRing } from '../shared/tracking/tokens.ts';

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
