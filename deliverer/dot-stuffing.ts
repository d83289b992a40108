// The deliverer sends every message through nodemailer's DataStream, which escapes dots at the
// start of lines and turns bare CR and LF into CRLF, looking at each byte in JavaScript: a
// quarter of the deliverer's CPU at 100 KB. Messages reach the deliverer with CRLF line ends
// already (the relay normalizes them), so the common chunk needs only its dots escaped: found
// by Buffer.indexOf of "\n.". A chunk with a bare CR or LF, or one that may continue a CRLF of
// the previous chunk, still goes through the library's own transform. package.json pins
// nodemailer; test/deliverer/dot-stuffing.test.ts compares both on the same input.
import { hasBareLineBreak } from '../shared/mail/line-endings.ts';
import { DataStream } from '../shared/mail/nodemailer-internals.ts';

type Transform = (chunk: Buffer | string, encoding: BufferEncoding, done: (error?: Error | null) => void) => void;
interface DataStreamState {
  inByteCount: number;
  outByteCount: number;
  lastByte: number | false;
  push(chunk: Buffer): boolean;
  _transform: Transform;
}

const DOT = Buffer.from('.');
const LINE_STARTING_WITH_DOT = Buffer.from('\n.');
const prototype = DataStream.prototype as unknown as DataStreamState;
const library = prototype._transform;

prototype._transform = function transform(this: DataStreamState, chunk, encoding, done) {
  if (typeof chunk === 'string' || chunk.length === 0 || this.lastByte === 0x0d || hasBareLineBreak(chunk)) {
    library.call(this, chunk, encoding, done);
    return;
  }
  const parts: Buffer[] = [];
  let from = 0;
  if (chunk[0] === 0x2e && (this.lastByte === false || this.lastByte === 0x0a)) parts.push(DOT);
  for (let lf = chunk.indexOf(LINE_STARTING_WITH_DOT); lf !== -1; lf = chunk.indexOf(LINE_STARTING_WITH_DOT, lf + 2)) {
    parts.push(chunk.subarray(from, lf + 1), DOT);
    from = lf + 1;
  }
  const out = parts.length ? Buffer.concat([...parts, chunk.subarray(from)]) : chunk;
  this.inByteCount += chunk.length;
  this.outByteCount += out.length;
  this.lastByte = chunk[chunk.length - 1]!;
  this.push(out);
  done();
};
