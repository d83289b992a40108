// Ways a peer's bytes can reach a stream: whole, a byte at a time, in two at every position,
// and in random small pieces. Stream parsers must give the same result for all of them.
import { randomInt } from 'node:crypto';

export function chunkCuts(bytes: Buffer, randomCuts = 30, maxPiece = 8): Buffer[][] {
  const cuts: Buffer[][] = [[bytes], [...bytes].map((b) => Buffer.from([b]))];
  for (let at = 1; at < bytes.length; at++) cuts.push([bytes.subarray(0, at), bytes.subarray(at)]);
  for (let n = 0; n < randomCuts; n++) {
    const pieces: Buffer[] = [];
    for (let at = 0; at < bytes.length;) {
      const next = Math.min(bytes.length, at + randomInt(1, maxPiece));
      pieces.push(bytes.subarray(at, next));
      at = next;
    }
    cuts.push(pieces);
  }
  return cuts;
}
