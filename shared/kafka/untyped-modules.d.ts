// Types for the modules kafkajs-patches.ts reaches that ship none of their own.

// crc-32 types its CRC-32 module only; its CRC-32C module has the same functions.
declare module 'crc-32/crc32c.js' {
  const crc32c: typeof import('crc-32');
  export default crc32c;
}

// What kafkajs-patches.ts uses of kafkajs's internal request encoder.
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
    writeInt32(value: number): Encoder;
    size(): number;
  }
}
