// Record compression, a choice of the producing roles (--kafka-compression). Consumers read any
// of them: kafkajs brings gzip, and zstd is registered here with Node.js's own zstd (node:zlib,
// run in libuv's thread pool), so no codec package is needed. The default, none, is measured:
// on a message of text and an image, zstd saves 30% of the bytes for 0.25 ms of compression and
// 0.15 ms of decompression per 100 KB, more CPU than those bytes cost the relay, broker and
// deliverer together (docs/benchmarks.md). Compression pays where bytes cost more than CPU:
// brokers in other zones, replication across them.
import { promisify } from 'node:util';
import { constants, zstdCompress, zstdDecompress } from 'node:zlib';
// kafkajs is CommonJS, and Node.js does not see these two among its named exports.
import kafkajs from 'kafkajs';
import type { KafkaCompression } from '../cli-options.ts';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** kafkajs's number for each codec of --kafka-compression. */
export const KAFKA_COMPRESSIONS: Record<KafkaCompression, kafkajs.CompressionTypes> = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, zstd: CompressionTypes.ZSTD };

const compress = promisify(zstdCompress);
const decompress = promisify(zstdDecompress);
// Level 1: at 100 KB and 1 MB it compresses as well as the default level 3, 10% faster.
const LEVEL_1 = { params: { [constants.ZSTD_c_compressionLevel]: 1 } };
// A batch never holds more than a fetch's bytes; a record that inflates past this is refused, not held in memory.
const DECOMPRESSED_LIMIT = { maxOutputLength: 512 * 1024 * 1024 };

CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  compress: (encoder: { buffer: Buffer }) => compress(encoder.buffer, LEVEL_1),
  decompress: (buffer: Buffer) => decompress(buffer, DECOMPRESSED_LIMIT),
});
