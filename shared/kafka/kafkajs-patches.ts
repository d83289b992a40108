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
// 2. Encoder buffers: kafkajs encodes a request level by level (record, record batch, partition,
//    topic, request, size prefix), each level copying the one below into a buffer it grows by
//    allocating zero-filled memory: seven copies of every message, a third of the relay's CPU at
//    1 MB. Buffers are now allocated without the zero fill (every byte is written before it is
//    read: the encoder only appends, and hands out the written part), and a level takes a part
//    of 16 KB or more by reference instead of copying it. The bytes are joined where kafkajs
//    needs them whole: for the batch's CRC, for the batch, and for the socket (three copies).
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

/** Parts at least this long are taken by reference. */
export const ADOPTED_PART_BYTES = 16 * 1024;

/**
 * An encoder's bytes are, in order: `parts` (its own bytes up to a point, and buffers taken by
 * reference, `adopted` bytes of them), then its own bytes from `tail` to `offset`. Without
 * parts it is kafkajs's plain encoder: buf[0, offset).
 */
interface PartsEncoder extends Encoder {
  parts?: Buffer[];
  adopted?: number;
  tail?: number;
}

function pieces(encoder: PartsEncoder): Buffer[] {
  const own = encoder.buf.subarray(encoder.tail ?? 0, encoder.offset);
  return encoder.parts ? [...encoder.parts, own] : [own];
}

const patched = Encoder.prototype as PartsEncoder;
const PATCHED_MEMBERS = ['ensureAvailable', 'writeBufferInternal', 'writeEncoder', 'writeEncoderArray', 'writeBytes', 'size', 'buffer'] as const;
/** The library's own members, as they were before this file replaced them (the test compares both). */
export const LIBRARY_ENCODER = Object.fromEntries(PATCHED_MEMBERS.map((name) => [name, Object.getOwnPropertyDescriptor(patched, name)!]));
const library = {
  writeEncoder: patched.writeEncoder,
  writeEncoderArray: patched.writeEncoderArray,
  writeBytes: patched.writeBytes,
};

patched.ensureAvailable = ensureAvailableUnfilled;

patched.writeBufferInternal = function writeBufferInternal(this: PartsEncoder, buffer: Buffer) {
  if (buffer.length < ADOPTED_PART_BYTES) {
    this.ensureAvailable(buffer.length);
    buffer.copy(this.buf, this.offset, 0);
    this.offset += buffer.length;
    return;
  }
  const parts = (this.parts ??= []);
  if (this.offset > (this.tail ?? 0)) parts.push(this.buf.subarray(this.tail ?? 0, this.offset));
  parts.push(buffer);
  this.adopted = (this.adopted ?? 0) + buffer.length;
  this.tail = this.offset;
};

// Encoders written into another take their pieces along, not a joined copy.
patched.writeEncoder = function writeEncoder(this: PartsEncoder, value: PartsEncoder) {
  if (!value?.parts) return library.writeEncoder.call(this, value);
  for (const piece of pieces(value)) this.writeBufferInternal(piece);
  return this;
};
patched.writeEncoderArray = function writeEncoderArray(this: PartsEncoder, values: PartsEncoder[]) {
  if (!Array.isArray(values) || !values.some((v) => v?.parts)) return library.writeEncoderArray.call(this, values);
  for (const value of values) this.writeEncoder(value);
  return this;
};
// As the library's, without first growing its own buffer by the length of a buffer it may take by reference.
patched.writeBytes = function writeBytes(this: PartsEncoder, value: Buffer | string | null) {
  if (!Buffer.isBuffer(value)) return library.writeBytes.call(this, value);
  this.writeInt32(value.length);
  this.writeBufferInternal(value);
  return this;
};
patched.size = function size(this: PartsEncoder) {
  return this.offset + (this.adopted ?? 0);
};
// Joined once; the encoder then holds the joined bytes, so asking again costs nothing.
Object.defineProperty(patched, 'buffer', {
  configurable: true,
  get(this: PartsEncoder) {
    if (!this.parts) return this.buf.slice(0, this.offset);
    const whole = Buffer.concat(pieces(this), this.offset + this.adopted!);
    this.buf = whole;
    this.offset = whole.length;
    this.parts = undefined;
    this.adopted = 0;
    this.tail = 0;
    return whole;
  },
});
