// Two patches of kafkajs's internals, for bytes it handles slower, and copies more often, than
// it has to; kafkajs has no option for either. package.json pins kafkajs's version, and
// test/shared/kafkajs-patches.test.ts checks that the requests are the library's byte for byte
// and that a process started through cli.ts (which imports this file first) uses them.
//
// 1. Encoders: kafkajs encodes a produce request level by level (record, record batch,
//    partition, topic, request, size prefix), each level copying the one below into a buffer it
//    grows by allocating zero-filled memory: seven copies of every message, a third of the
//    relay's CPU at 1 MB. Buffers are now allocated without the zero fill (every byte is written
//    before it is read: an encoder only appends, and hands out the written part), and a level
//    takes a part of 16 KB or more by reference instead of copying it. The bytes are joined once,
//    for the socket.
// 2. Record batches: the batch's CRC-32C was computed over a joined copy, a byte at a time (a
//    fifth of the relay's CPU at 100 KB). The batch is now built as the library builds it, with
//    the CRC summed over its parts by SheetJS's crc-32 (sixteen bytes at a time, 56 µs instead of
//    240 for 100 KB). The library's record batch module exports an object; its RecordBatch is
//    replaced there before any produce request module takes it.
import crc32c from 'crc-32/crc32c.js';
import Encoder from 'kafkajs/src/protocol/encoder.js';
import compression from 'kafkajs/src/protocol/message/compression/index.js';
import recordBatchModule from 'kafkajs/src/protocol/recordBatch/v0/index.js';
import Long from 'kafkajs/src/utils/long.js';

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
  writeEncoder: LIBRARY_ENCODER.writeEncoder!.value as Encoder['writeEncoder'],
  writeEncoderArray: LIBRARY_ENCODER.writeEncoderArray!.value as Encoder['writeEncoderArray'],
  writeBytes: LIBRARY_ENCODER.writeBytes!.value as Encoder['writeBytes'],
};

/** kafkajs 2.2.4's Encoder.ensureAvailable, with Buffer.allocUnsafe for Buffer.alloc. */
export function ensureAvailableUnfilled(this: Encoder, length: number): void {
  if (this.offset + length > this.buf.length) {
    const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
    this.buf.copy(grown, 0, 0, this.offset);
    this.buf = grown;
  }
}
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

/** CRC-32C of an encoder's bytes, summed over its pieces. */
export function crc32cOf(encoder: Encoder): number {
  let crc = 0;
  for (const piece of pieces(encoder)) crc = crc32c.buf(piece, crc);
  return crc >>> 0;
}

const TRANSACTIONAL = 16;

interface RecordBatchOptions {
  compression?: number; firstOffset?: Long; firstTimestamp?: number; maxTimestamp?: number; partitionLeaderEpoch?: number;
  lastOffsetDelta?: number; transactional?: boolean; producerId?: Long; producerEpoch?: number; firstSequence?: number; records?: Encoder[];
}

/** Calls since start: the test checks that produce requests reach this function. */
export const recordBatchCalls = { count: 0 };

/** kafkajs 2.2.4's RecordBatch (recordBatch/v0), its CRC summed over the parts. */
export async function recordBatchOverParts({
  compression: codec = compression.Types.None, firstOffset = Long.fromInt(0), firstTimestamp = Date.now(), maxTimestamp = Date.now(),
  partitionLeaderEpoch = 0, lastOffsetDelta = 0, transactional = false, producerId = Long.fromValue(-1), producerEpoch = 0,
  firstSequence = 0, records = [],
}: RecordBatchOptions): Promise<Encoder> {
  recordBatchCalls.count++;
  const attributes = (codec & compression.COMPRESSION_CODEC_MASK) | (transactional ? TRANSACTIONAL : 0);
  const body = new Encoder()
    .writeInt16(attributes).writeInt32(lastOffsetDelta).writeInt64(firstTimestamp).writeInt64(maxTimestamp)
    .writeInt64(producerId).writeInt16(producerEpoch).writeInt32(firstSequence);
  if (codec === compression.Types.None) {
    if (records.every((r) => typeof r === typeof records[0])) body.writeArray(records, typeof records[0]);
    else body.writeArray(records);
  } else {
    const recordsEncoder = new Encoder().writeEncoderArray(records);
    body.writeInt32(records.length).writeBuffer(await compression.lookupCodec(codec).compress(recordsEncoder));
  }
  const batch = new Encoder().writeInt32(partitionLeaderEpoch).writeInt8(recordBatchModule.MAGIC_BYTE).writeUInt32(crc32cOf(body)).writeEncoder(body);
  // The library: writeBytes(batch.buffer), a length then the bytes; here without joining them.
  return new Encoder().writeInt64(firstOffset).writeInt32(batch.size()).writeEncoder(batch);
}

/** The library's RecordBatch, for the test. */
export const LIBRARY_RECORD_BATCH = recordBatchModule.RecordBatch;
recordBatchModule.RecordBatch = recordBatchOverParts;
