// kafkajs's patches (shared/kafka/kafkajs-patches.ts): the fast CRC-32C gives kafkajs's own
// numbers and is really in use in a process started through the CLI (the image's bundle refuses
// to build without it: build/bundle.ts); encoders without zero-filled buffers encode the same
// bytes as the library's.
// @needs processes
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureAvailableUnfilled, fastCrc32c } from '../../shared/kafka/kafkajs-patches.ts';

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

test("a produce request encodes to the same bytes with unfilled encoder buffers as with the library's", async () => {
  const Encoder = require('kafkajs/src/protocol/encoder.js') as { nextPowerOfTwo(n: number): number; prototype: { ensureAvailable: (length: number) => void } };
  const produce = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (args: object) => { encode(): Promise<{ buffer: Buffer }> };
  // The library's own, as in kafkajs 2.2.4.
  const library = function ensureAvailable(this: { offset: number; buf: Buffer }, length: number) {
    if (this.offset + length > this.buf.length) {
      const grown = Buffer.alloc(Encoder.nextPowerOfTwo(this.offset + length));
      this.buf.copy(grown, 0, 0, this.offset);
      this.buf = grown;
    }
  };
  const request = () => produce({
    acks: -1, timeout: 5000, compression: 0,
    topicData: [{ topic: 'mtrelay.submissions', partitions: [{ partition: 1, firstSequence: 0, messages: [1_000, 102_400, 3].map((size, i) => ({
      key: `t${i}`, value: randomBytes(size), headers: { 'mtrelay-namespace': 'shop', 'mtrelay-rcpt': `a${i}@x.test` }, timestamp: 1_790_000_000_000 + i,
    })) }] }],
  });
  assert.equal(Encoder.prototype.ensureAvailable, ensureAvailableUnfilled, 'the patch is in place');
  const fixed = request();
  const patchedBytes = (await fixed.encode()).buffer;
  Encoder.prototype.ensureAvailable = library;
  try {
    assert.ok(patchedBytes.equals((await fixed.encode()).buffer), 'same request, same bytes');
  } finally {
    Encoder.prototype.ensureAvailable = ensureAvailableUnfilled;
  }
  assert.ok(patchedBytes.length > 103_400);
});
