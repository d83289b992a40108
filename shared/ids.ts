// Transmission ids: decimal strings like SparkPost's, ordered by time. 41 bits of
// milliseconds and 22 random bits, so ids from many relay pods do not collide in practice.
import { randomInt } from 'node:crypto';

const EPOCH_MS = Date.UTC(2024, 0, 1);

export function newTransmissionId(now = Date.now()): string {
  return ((BigInt(now - EPOCH_MS) << 22n) | BigInt(randomInt(0, 1 << 22))).toString();
}
