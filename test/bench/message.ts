// Test messages of an exact size, shaped like a newsletter: real headers (a From at the
// account's sending domain, a unique Message-ID), then up to 16 KB of text (words in
// 76-character lines, which compress as prose and markup do), then base64 lines of random bytes
// (an inline image or attachment, which does not compress beyond base64's 3/4), then the final
// dot. Every message's body is its own, so a batch of them compresses no better than one.
import { randomBytes, randomInt } from 'node:crypto';

const TEXT_BYTES = 16 * 1024;
export const WORDS = `the of and to a in for is on that by this with you it not or be are from at as your all have new more an
was we will home can us about if page my has search free but our one other do no information time they site he up may
what which their news out use any there see only so his when contact here business who web also now help get pm view
online first am been would how were me services some these click its like service than find price date back top people
had list name just over state year day into email two health world next used go work last most products music buy data
make them should product system post her city add policy number such please available copyright support message after
best software then jan good video well where info rights public books high school through each links she review years
order very privacy book items company read group need many user said does set under general research university january
mail full map reviews program life know games way days management part could great united hotel real item international`.split(/\s+/);

/** Lines of random words, each under 76 characters, `bytes` long with their CRLFs. */
function textLines(bytes: number): string {
  const lines: string[] = [];
  let length = 0;
  while (length < bytes) {
    let line = WORDS[randomInt(WORDS.length)]!;
    while (line.length < 60) line += ` ${WORDS[randomInt(WORDS.length)]}`;
    lines.push(line);
    length += line.length + 2;
  }
  // A cut between CR and LF would leave a bare CR before the base64 that follows; make it an x.
  return `${lines.join('\r\n')}\r\n`.slice(0, bytes).replace(/\r$/, 'x');
}

/** Base64 of random bytes in 76-character lines, `bytes` long with their CRLFs. */
function base64Lines(bytes: number): string {
  const encoded = randomBytes(Math.ceil((bytes * 3) / 4) + 3).toString('base64');
  return encoded.replace(/(.{76})/g, '$1\r\n').slice(0, bytes);
}

/** Makes a load's messages: given their size and addresses, a function returning the next one, ready for DATA. */
export type MessageFactory = (size: number, from: string, to: string) => () => Buffer;

/** Returns a function that makes the next message: `size` bytes plus the CRLF.CRLF ending. */
export function messageFactory(size: number, from: string, to: string): () => Buffer {
  const run = randomBytes(6).toString('hex');
  let sequence = 0;
  return () => {
    sequence += 1;
    const head = [
      `From: Bench <${from}>`, `To: <${to}>`, `Subject: bench message ${sequence}`,
      `Message-ID: <bench.${run}.${sequence}@${from.split('@')[1]}>`, `Date: ${new Date().toUTCString()}`,
      'MIME-Version: 1.0', 'Content-Type: text/plain; charset=us-ascii', '', '',
    ].join('\r\n');
    const bodyBytes = Math.max(0, size - head.length - 2);
    const text = textLines(Math.min(bodyBytes, TEXT_BYTES));
    // No line starts with a dot (words and base64 have none), so no dot-stuffing is needed;
    // a cut that leaves a lone CR at the end is made an x, so the final CRLF stays clean.
    let body = `${text}${base64Lines(bodyBytes - text.length)}`;
    if (body.endsWith('\r')) body = `${body.slice(0, -1)}x`;
    return Buffer.from(`${head}${body}\r\n.\r\n`, 'latin1');
  };
}
