// Types for the modules kafkajs-patches.ts reaches that ship none of their own.

// crc-32 types its CRC-32 module only; its CRC-32C module has the same functions.
declare module 'crc-32/crc32c.js' {
  const crc32c: typeof import('crc-32');
  export default crc32c;
}

// What kafkajs-patches.ts uses of kafkajs's internal request encoding.
declare module 'kafkajs/src/protocol/encoder.js' {
  export default class Encoder {
    constructor(initialSize?: number);
    buf: Buffer;
    offset: number;
    get buffer(): Buffer;
    static nextPowerOfTwo(value: number): number;
    ensureAvailable(length: number): void;
    writeBufferInternal(buffer: Buffer): void;
    writeEncoder(value: Encoder): Encoder;
    writeEncoderArray(values: Encoder[]): Encoder;
    writeBytes(value: Buffer | string | null): Encoder;
    writeBuffer(value: Buffer): Encoder;
    writeArray(values: unknown[], type?: string): Encoder;
    writeInt8(value: number): Encoder;
    writeInt16(value: number): Encoder;
    writeInt32(value: number): Encoder;
    writeUInt32(value: number): Encoder;
    /** A number, or kafkajs's Long. */
    writeInt64(value: number | object): Encoder;
    size(): number;
  }
}

declare module 'kafkajs/src/utils/long.js' {
  export default class Long {
    static fromInt(value: number): Long;
    static fromValue(value: number | string): Long;
  }
}

declare module 'kafkajs/src/protocol/message/compression/index.js' {
  const compression: {
    Types: { None: number };
    COMPRESSION_CODEC_MASK: number;
    lookupCodec(type: number): { compress(encoder: { buffer: Buffer }): Promise<Buffer> };
  };
  export default compression;
}

declare module 'kafkajs/src/protocol/recordBatch/v0/index.js' {
  const recordBatch: { MAGIC_BYTE: number; RecordBatch: (options: never) => Promise<unknown> };
  export default recordBatch;
}
