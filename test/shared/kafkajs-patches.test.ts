// kafkajs's patches (shared/kafka/kafkajs-patches.ts): produce requests are the library's byte
// for byte, whatever their records' sizes and codecs; the CRC over parts is the library's
// CRC-32C; and a process started through cli.ts builds its record batches with the patch.
// @needs processes
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ADOPTED_PART_BYTES, LIBRARY_ENCODER, LIBRARY_RECORD_BATCH, crc32cOf, ensureAvailableUnfilled, recordBatchCalls,
} from '../../shared/kafka/kafkajs-patches.ts';
import '../../shared/kafka/compression.ts';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../..', import.meta.url));
const Encoder = require('kafkajs/src/protocol/encoder.js') as { new (): { writeBuffer(b: Buffer): unknown }; prototype: object };
const recordBatchModule = require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch: (o: never) => Promise<unknown> };
const encodeRequest = require('kafkajs/src/protocol/request.js') as (args: object) => Promise<{ buffer: Buffer; size(): number }>;
const produce = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (args: object) => object;

test("the CRC over an encoder's parts is the library's CRC-32C of its bytes, and the RFC 3720 check value", () => {
  const javascript = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
  const encoder = (...parts: Buffer[]) => {
    const e = new Encoder();
    for (const part of parts) e.writeBuffer(part);
    return e as never;
  };
  assert.equal(crc32cOf(encoder(Buffer.from('123456789'))), 0xe3069283);
  for (const sizes of [[0], [1], [7, 15], [ADOPTED_PART_BYTES, 3, ADOPTED_PART_BYTES + 5], [102_400], [1_048_577, 16]]) {
    const parts = sizes.map((n) => randomBytes(n));
    assert.equal(crc32cOf(encoder(...parts)), javascript(Buffer.concat(parts)), `parts of ${sizes.join(', ')} bytes`);
  }
});

test("produce requests are the library's, byte for byte, uncompressed and compressed", async () => {
  const patchedMembers = Object.fromEntries(Object.keys(LIBRARY_ENCODER).map((name) => [name, Object.getOwnPropertyDescriptor(Encoder.prototype, name)!]));
  const patchedRecordBatch = recordBatchModule.RecordBatch;
  const useLibrary = (library: boolean) => {
    for (const [name, descriptor] of Object.entries(library ? LIBRARY_ENCODER : patchedMembers)) Object.defineProperty(Encoder.prototype, name, descriptor);
    recordBatchModule.RecordBatch = library ? LIBRARY_RECORD_BATCH : patchedRecordBatch;
  };
  const request = (sizes: number[][], compression: number) => produce({
    acks: -1, timeout: 5000, compression,
    topicData: [{ topic: 'mtrelay.submissions', partitions: sizes.map((records, partition) => ({ partition, firstSequence: 0, messages: records.map((size, i) => ({
      key: `t${i}`, value: Buffer.alloc(size, 97 + i), headers: { 'mtrelay-namespace': 'shop', 'mtrelay-rcpt': `a${i}@x.test` }, timestamp: 1_790_000_000_000 + i,
    })) })) }],
  });
  const encode = async (sizes: number[][], compression: number) => {
    const encoded = await encodeRequest({ correlationId: 7, clientId: 'mtrelay-test', request: request(sizes, compression) });
    const size = encoded.size();
    const bytes = encoded.buffer;
    assert.equal(size, bytes.length, 'size() counts every byte');
    assert.ok(bytes.equals(encoded.buffer), 'asking for the bytes again gives the same');
    return bytes;
  };
  assert.equal(patchedMembers.ensureAvailable!.value, ensureAvailableUnfilled, 'the patches are in place');
  const calls = recordBatchCalls.count;
  // 0: none, 1: gzip, 4: zstd (kafkajs's CompressionTypes)
  for (const compression of [0, 1, 4]) {
    for (const sizes of [[[10]], [[ADOPTED_PART_BYTES - 1, ADOPTED_PART_BYTES, 3]], [[102_400], [5, 200_000]], [[1_048_576, 1_048_576]]]) {
      const ours = await encode(sizes, compression);
      useLibrary(true);
      try {
        const theirs = await encode(sizes, compression);
        // Compressed bytes may differ between two runs of a codec only if the codec is not deterministic; these are.
        assert.ok(ours.equals(theirs), `codec ${compression}, records of ${JSON.stringify(sizes)} bytes: the same request`);
      } finally {
        useLibrary(false);
      }
    }
  }
  assert.ok(recordBatchCalls.count > calls, 'the requests were built by the patched record batch');
});

test('a process started through cli.ts builds record batches with the patch', () => {
  // At exit, after cli.ts has loaded every role and printed its help: a produce request built
  // then must go through the patched RecordBatch (a produce module loaded before the patch
  // would hold the library's).
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(`${root}/cli.ts`)});
    const exit = process.exit;
    let checked = false;
    process.exit = () => {
      if (!checked) {
        checked = true;
        const produce = require('kafkajs/src/protocol/requests/produce/v3/request.js');
        produce({ acks: -1, timeout: 1, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [{ value: Buffer.from('x') }] }] }] }).encode()
          .then(() => import(${JSON.stringify(`${root}/shared/kafka/kafkajs-patches.ts`)}))
          .then((patches) => { process.stderr.write('record batches: ' + patches.recordBatchCalls.count); exit(0); });
      }
      throw new Error('help printed'); // commander goes no further
    };
    process.argv = [process.argv[0], 'cli.ts', 'relay', '--help'];
    await import(${JSON.stringify(`${root}/cli.ts`)});`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.match(run.stderr, /record batches: 1$/, run.stderr);
});
