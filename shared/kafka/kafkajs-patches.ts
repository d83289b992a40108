// Two patches of kafkajs's internals, for bytes it handles slower than it has to; kafkajs has no
// option for either. package.json pins kafkajs's version and test/shared/kafkajs-patches.test.ts
// compares both with the library's own results. Imported for effect by cli.ts, first.
//
// 1. CRC-32C: record batches carry one over their bytes, which kafkajs computes a byte at a time:
//    for a 100 KB message that was the relay's largest single cost (240 µs). SheetJS's crc-32
//    does the same sum sixteen bytes at a time (56 µs), in plain JavaScript, so the bundle stays
//    one folder with no native addon. kafkajs's CRC module is replaced before kafkajs loads it: in
//    the module cache when running from node_modules (cli.ts imports this file before anything
//    else), and by the bundler's plugin in the image (build/bundle.ts). A process that loads
//    kafkajs first computes the same sums, only slower.
// 2. Encoder buffers: kafkajs encodes a request level by level, each level into a buffer it grows
//    by allocating zero-filled memory, a fifth of the relay's CPU at 100 KB. Every byte of those
//    buffers is written before it is read (the encoder only ever appends, and hands out the
//    written part), so they are allocated without the zero fill.
import { Module, createRequire } from 'node:module';
// crc-32 ships one typing for its two modules: crc32c.js has the same functions as crc32.js.
import crc32c from 'crc-32/crc32c.js';
import Encoder from 'kafkajs/src/protocol/encoder.js';

const require = createRequire(import.meta.url);

/** kafkajs's CRC module, as its record batch encoder requires it. */
export const KAFKAJS_CRC32C_MODULE = 'kafkajs/src/protocol/recordBatch/crc32C/index.js';

/** CRC-32C as kafkajs's module returns it: an unsigned 32-bit number. */
export function fastCrc32c(buffer: Buffer): number {
  return crc32c.buf(buffer) >>> 0;
}

/** Where kafkajs's module is, or undefined in the bundle, which has no node_modules and needs no seeding. */
function kafkajsModulePath(): string | undefined {
  try {
    return require.resolve(KAFKAJS_CRC32C_MODULE);
  } catch {
    return undefined;
  }
}

const path = kafkajsModulePath();
if (path && !require.cache[path]) {
  const entry = new Module(path);
  entry.filename = path;
  entry.loaded = true;
  entry.exports = fastCrc32c;
  require.cache[path] = entry;
}

/** kafkajs 2.2.4's Encoder.ensureAvailable, with Buffer.allocUnsafe for Buffer.alloc. */
export function ensureAvailableUnfilled(this: Encoder, length: number): void {
  if (this.offset + length > this.buf.length) {
    const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
    this.buf.copy(grown, 0, 0, this.offset);
    this.buf = grown;
  }
}
Encoder.prototype.ensureAvailable = ensureAvailableUnfilled;
