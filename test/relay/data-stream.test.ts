// The relay's DATA scan (smtp-server-patches.ts, patch 4) against smtp-server's own: the same
// message bytes, the same byte count and the same commands after the final dot, however the
// client's bytes are cut into chunks. Both run in the library's real SMTPStream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkCuts } from '../helpers/chunk-cuts.ts';

// The library's function is taken before the patch module replaces it.
const { SMTPStream } = await import('smtp-server/lib/smtp-stream.js');
type Feed = (chunk: Buffer, done: () => void) => void;
const prototype = SMTPStream.prototype as unknown as { _feedDataStream: Feed };
const library = prototype._feedDataStream;
await import('../../relay/smtp-server-patches.ts');
const patched = prototype._feedDataStream;

interface Received { data: string; bytes: number; commands: string[] }

async function receive(feed: Feed, chunks: Buffer[]): Promise<Received> {
  prototype._feedDataStream = feed;
  try {
    const stream = new SMTPStream();
    const commands: string[] = [];
    (stream as unknown as { oncommand: (c: Buffer, cb?: () => void) => void }).oncommand = (command, callback) => {
      commands.push(command.toString('latin1'));
      callback?.(); // none for the last line, flushed at the end without a CRLF
    };
    const dataStream = stream.startDataMode(0);
    const parts: Buffer[] = [];
    dataStream.on('data', (part: Buffer) => parts.push(part));
    const ended = new Promise((resolve) => dataStream.once('end', resolve));
    // Written at once, as a socket would: the stream holds what follows the final dot until continue().
    for (const chunk of chunks) stream.write(chunk);
    await ended;
    stream.continue();
    await new Promise((resolve) => stream.end(resolve));
    return { data: Buffer.concat(parts).toString('latin1'), bytes: stream.dataBytes, commands };
  } finally {
    prototype._feedDataStream = patched;
  }
}

const messages: Record<string, { wire: string; data: string }> = {
  'plain lines': { wire: 'Subject: a\r\n\r\nbody\r\n.\r\nQUIT\r\n', data: 'Subject: a\r\n\r\nbody\r\n' },
  'escaped dots': { wire: '..first\r\nx\r\n..\r\n...\r\n.y\r\n.\r\nRSET\r\nQUIT\r\n', data: '.first\r\nx\r\n.\r\n..\r\n.y\r\n' },
  'an empty message': { wire: '.\r\nNOOP\r\n', data: '' },
  'a dot line, then the end': { wire: 'a\r\n..\r\n.\r\n', data: 'a\r\n.\r\n' },
  'dots that do not start a line': { wire: 'a.\r\nb .\r\n.\r\nQUIT', data: 'a.\r\nb .\r\n' },
  'bare LF and CR around dots': { wire: 'a\n.b\r.c\r\n..\n\r\n.\r\nQUIT\r\n', data: 'a\n.b\r.c\r\n.\n\r\n' },
};

for (const [name, { wire, data }] of Object.entries(messages)) {
  test(`DATA scan, ${name}: as the library's, cut at every byte and at random`, async () => {
    const bytes = Buffer.from(wire, 'latin1');
    const cuts = chunkCuts(bytes, 30, 8);
    const expected = await receive(library, [bytes]);
    assert.equal(expected.data, data, 'the library itself, as the case says');
    for (const chunks of cuts) {
      const cutAt = chunks.map((c) => c.length).join(',');
      assert.deepEqual(await receive(patched, chunks), await receive(library, chunks), `chunks of ${cutAt}`);
    }
  });
}

test("DATA scan of a 100 KB message with dot lines: as the library's", async () => {
  const lines = Array.from({ length: 1400 }, (_, i) => (i % 97 === 0 ? `..dot line ${i}` : `line ${i} ${'x'.repeat(60)}`));
  const bytes = Buffer.from(`${lines.join('\r\n')}\r\n.\r\nQUIT\r\n`, 'latin1');
  const chunks = [bytes.subarray(0, 65536), bytes.subarray(65536)];
  const got = await receive(patched, chunks);
  assert.deepEqual(got, await receive(library, chunks));
  assert.equal(got.data.split('\r\n').filter((l) => l.startsWith('.dot line')).length, 15);
});
