// The deliverer's dot-stuffing (deliverer/dot-stuffing.ts) against nodemailer's own DataStream
// transform: the same bytes on the wire and the same counts, however the message is cut.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkCuts } from '../helpers/chunk-cuts.ts';
import { DataStream } from '../../shared/mail/nodemailer-internals.ts';

type Transform = (chunk: Buffer, encoding: BufferEncoding, done: () => void) => void;
const prototype = DataStream.prototype as unknown as { _transform: Transform };
const library = prototype._transform;
await import('../../deliverer/dot-stuffing.ts');
const patched = prototype._transform;

interface Sent { wire: string; inBytes: number; outBytes: number }

async function send(transform: Transform, chunks: Buffer[]): Promise<Sent> {
  prototype._transform = transform;
  try {
    const stream = new DataStream();
    const out: Buffer[] = [];
    stream.on('data', (part: Buffer) => out.push(part));
    const ended = new Promise((resolve) => stream.once('end', resolve));
    for (const chunk of chunks) stream.write(chunk);
    stream.end();
    await ended;
    return { wire: Buffer.concat(out).toString('latin1'), inBytes: stream.inByteCount, outBytes: stream.outByteCount };
  } finally {
    prototype._transform = patched;
  }
}

const messages: Record<string, { message: string; wire: string }> = {
  'no dots': { message: 'Subject: a\r\n\r\nbody\r\n', wire: 'Subject: a\r\n\r\nbody\r\n.\r\n' },
  'a dot first, dot lines, a lone dot line': { message: '.a\r\n.\r\nb.\r\n..c\r\n', wire: '..a\r\n..\r\nb.\r\n...c\r\n.\r\n' },
  'no CRLF at the end': { message: 'x\r\n.y', wire: 'x\r\n..y\r\n.\r\n' },
  'bare LF and CR (smuggling shapes)': { message: 'a\n.\nb\r.\rc\r\n.\r\r\n', wire: 'a\r\n..\r\nb\r\n..\r\nc\r\n..\r\n\r\n.\r\n' },
};

for (const [name, { message, wire }] of Object.entries(messages)) {
  test(`dot-stuffing, ${name}: as nodemailer's, in one chunk, cut at every byte and at random`, async () => {
    const bytes = Buffer.from(message, 'latin1');
    const whole = await send(library, [bytes]);
    assert.equal(whole.wire, wire, 'nodemailer itself, as the case says');
    const cuts = chunkCuts(bytes, 30, 6);
    for (const chunks of cuts) assert.deepEqual(await send(patched, chunks), await send(library, chunks), `chunks of ${chunks.map((c) => c.length).join(',')}`);
  });
}

test("dot-stuffing of a 100 KB message with dot lines: as nodemailer's, in one chunk", async () => {
  const lines = Array.from({ length: 1400 }, (_, i) => (i % 97 === 0 ? `.dot line ${i}` : `line ${i} ${'x'.repeat(60)}`));
  const bytes = Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1');
  const sent = await send(patched, [bytes]);
  assert.deepEqual(sent, await send(library, [bytes]));
  assert.equal(sent.wire.split('\r\n').filter((l) => l.startsWith('..dot line')).length, 15);
});
