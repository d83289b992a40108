// Test messages of an exact size: real headers (a From at the account's sending domain,
// a unique Message-ID) and a plain body of 76-character lines, followed by the final dot.
import { randomBytes } from 'node:crypto';

const LINE = `${'x'.repeat(76)}\r\n`;

/** Returns a function that makes the next message: `size` bytes plus the CRLF.CRLF ending. */
export function messageFactory(size: number, from: string, to: string): () => Buffer {
  const run = randomBytes(6).toString('hex');
  const filler = LINE.repeat(Math.ceil(size / LINE.length) + 1);
  let sequence = 0;
  return () => {
    sequence += 1;
    const head = [
      `From: Bench <${from}>`, `To: <${to}>`, `Subject: bench message ${sequence}`,
      `Message-ID: <bench.${run}.${sequence}@${from.split('@')[1]}>`, `Date: ${new Date().toUTCString()}`,
      'MIME-Version: 1.0', 'Content-Type: text/plain; charset=us-ascii', '', '',
    ].join('\r\n');
    // The body fills the rest; it never starts a line with a dot, so no dot-stuffing is needed.
    let body = filler.slice(0, Math.max(0, size - head.length - 2));
    if (body.endsWith('\r')) body = `${body.slice(0, -1)}x`; // no bare CR before the final CRLF
    return Buffer.from(`${head}${body}\r\n.\r\n`, 'latin1');
  };
}
