// kafkajs's patches (shared/kafka/kafkajs-patches.ts): the fast CRC-32C gives kafkajs's own
// numbers and is really in use in a process started through the CLI (the image's bundle refuses
// to build without it: build/bundle.ts); the encoder that takes large parts by reference and
// allocates without zero-filling encodes the same requests as the library's, byte for byte.
// @needs processes
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ADOPTED_PART_BYTES, LIBRARY_ENCODER, ensureAvailableUnfilled, fastCrc32c } from '../../shared/kafka/kafkajs-patches.ts';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../..', import.meta.url));

test("the fast CRC-32C gives what kafkajs's own computes, and the RFC 3720 check value", () => {
  const kafkajs = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number;
  assert.equal(fastCrc32c(Buffer.from('123456789')), 0xe3069283);
  for (const size of [0, 1, 7, 15, 16, 17, 4096, 102_400, 1_048_577]) {
    const bytes = randomBytes(size);
    assert.equal(fastCrc32c(bytes), kafkajs(bytes) >>> 0, `${size} bytes`);
  }
});

test('a process started through cli.ts has kafkajs use the fast CRC-32C', () => {
  // Checked at exit, after cli.ts has loaded every role and printed its help; then a produce
  // request's encoder is loaded, as the first send would.
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(`${root}/cli.ts`)});
    process.on('exit', () => {
      require('kafkajs/src/protocol/recordBatch/v0/index.js');
      const entry = require.cache[require.resolve('kafkajs/src/protocol/recordBatch/crc32C/index.js')];
      process.stderr.write('crc32c:' + (entry.exports.name || 'kafkajs'));
    });
    process.argv = [process.argv[0], 'cli.ts', 'relay', '--help'];
    await import(${JSON.stringify(`${root}/cli.ts`)});`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.match(run.stderr, /crc32c:fastCrc32c$/, run.stderr);
});

test("produce requests encode to the same bytes with the patched encoder as with the library's", async () => {
  const Encoder = require('kafkajs/src/protocol/encoder.js') as { prototype: object };
  const encodeRequest = require('kafkajs/src/protocol/request.js') as (args: object) => Promise<{ buffer: Buffer; size(): number }>;
  const produce = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (args: object) => object;
  const patchedMembers = Object.fromEntries(Object.keys(LIBRARY_ENCODER).map((name) => [name, Object.getOwnPropertyDescriptor(Encoder.prototype, name)!]));
  const use = (members: Record<string, PropertyDescriptor>) => { for (const [name, descriptor] of Object.entries(members)) Object.defineProperty(Encoder.prototype, name, descriptor); };
  const request = (sizes: number[][]) => produce({
    acks: -1, timeout: 5000, compression: 0,
    topicData: [{ topic: 'mtrelay.submissions', partitions: sizes.map((records, partition) => ({ partition, firstSequence: 0, messages: records.map((size, i) => ({
      key: `t${i}`, value: Buffer.alloc(size, 97 + i), headers: { 'mtrelay-namespace': 'shop', 'mtrelay-rcpt': `a${i}@x.test` }, timestamp: 1_790_000_000_000 + i,
    })) })) }],
  });
  const encode = async (sizes: number[][]) => {
    const encoded = await encodeRequest({ correlationId: 7, clientId: 'mtrelay-test', request: request(sizes) });
    const size = encoded.size();
    const bytes = encoded.buffer;
    assert.equal(size, bytes.length, 'size() counts every byte');
    assert.ok(bytes.equals(encoded.buffer), 'asking for the bytes again gives the same');
    return bytes;
  };
  assert.equal(Encoder.prototype.hasOwnProperty('buffer') && patchedMembers.ensureAvailable!.value, ensureAvailableUnfilled, 'the patches are in place');
  for (const sizes of [[[10]], [[ADOPTED_PART_BYTES - 1, ADOPTED_PART_BYTES, 3]], [[102_400], [5, 200_000]], [[1_048_576, 1_048_576]]]) {
    const ours = await encode(sizes);
    use(LIBRARY_ENCODER);
    try {
      assert.ok(ours.equals(await encode(sizes)), `records of ${JSON.stringify(sizes)} bytes: the same request`);
    } finally {
      use(patchedMembers);
    }
  }
});
