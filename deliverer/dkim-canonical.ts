// RFC 6376 relaxed canonicalization over buffers. The body is hashed as it stands wherever it
// is already canonical (native `indexOf` scans find the lines that are not, and only those are
// rewritten), so a 100 KB body costs one SHA-256 pass and no copy.
import { createHash } from 'node:crypto';

const CRLF = Buffer.from('\r\n');
const SP = 0x20;
const TAB = 0x09;

function isWsp(byte: number | undefined): boolean {
  return byte === SP || byte === TAB;
}

/** Whether bytes [start, end) are all SP or HTAB (an empty range is). */
function allWsp(body: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (!isWsp(body[i])) return false;
  return true;
}

/** End of the body once its trailing empty (or white-space-only) lines are dropped: RFC 6376 3.4.4 c. */
function contentEnd(body: Buffer): number {
  let end = body.length;
  while (end > 0) {
    const endsWithCrlf = end >= 2 && body[end - 2] === 0x0d && body[end - 1] === 0x0a;
    const lineEnd = endsWithCrlf ? end - 2 : end;
    const previous = lineEnd >= 2 ? body.lastIndexOf(CRLF, lineEnd - 2) : -1;
    const lineStart = previous === -1 ? 0 : previous + 2;
    if (!allWsp(body, lineStart, lineEnd)) break;
    end = lineStart;
  }
  return end;
}

/** The next position at or after `from` that makes its line non-canonical: a tab, two spaces, or a space before CRLF. */
class DirtyFinder {
  readonly #body: Buffer;
  readonly #next: number[] = [-2, -2, -2];
  static readonly #needles = [Buffer.from('\t'), Buffer.from('  '), Buffer.from(' \r\n')];

  constructor(body: Buffer) {
    this.#body = body;
  }

  from(position: number): number {
    let found = -1;
    for (let k = 0; k < 3; k++) {
      // Each needle's last answer stays valid until the scan passes it.
      if (this.#next[k] !== -1 && this.#next[k]! < position) this.#next[k] = this.#body.indexOf(DirtyFinder.#needles[k]!, position);
      const at = this.#next[k]!;
      if (at !== -1 && (found === -1 || at < found)) found = at;
    }
    return found;
  }
}

function canonicalLine(line: Buffer): Buffer {
  return Buffer.from(line.toString('latin1').replace(/[ \t]+/g, ' ').replace(/ $/, ''), 'latin1');
}

/** Base64 SHA-256 of the body under relaxed canonicalization (the DKIM `bh=` value). */
export function relaxedBodyHash(body: Buffer): string {
  const hash = createHash('sha256');
  const end = contentEnd(body);
  const dirty = new DirtyFinder(body);
  let hashedTo = 0;
  for (let at = dirty.from(0); at !== -1 && at < end; at = dirty.from(hashedTo)) {
    const lineStart = at >= 1 ? body.lastIndexOf(CRLF, at - 1) : -1;
    const start = lineStart === -1 ? 0 : lineStart + 2;
    const lineEndCrlf = body.indexOf(CRLF, at);
    const stop = lineEndCrlf === -1 || lineEndCrlf > end ? end : lineEndCrlf;
    hash.update(body.subarray(hashedTo, start));
    hash.update(canonicalLine(body.subarray(start, stop)));
    hashedTo = stop;
  }
  // The last line may end in white space without a CRLF after it.
  if (end > 0 && body[end - 1] !== 0x0a && isWsp(body[end - 1]) && hashedTo < end) {
    const lineStart = body.lastIndexOf(CRLF, end - 1);
    const start = Math.max(hashedTo, lineStart === -1 ? 0 : lineStart + 2);
    hash.update(body.subarray(hashedTo, start));
    hash.update(canonicalLine(body.subarray(start, end)));
    hashedTo = end;
  }
  hash.update(body.subarray(hashedTo, end));
  if (end > 0 && !(body[end - 2] === 0x0d && body[end - 1] === 0x0a)) hash.update(CRLF);
  return hash.digest('base64');
}

/** Removes SP and HTAB (WSP) at both ends, and nothing else: JavaScript's trim() would also take byte 0xA0, the last byte of many UTF-8 characters. */
function trimWsp(text: string): string {
  return text.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** One header field (name, colon, value, folds and CRLF as they stand, as latin1) under relaxed canonicalization. */
export function relaxedHeader(field: string): string {
  const colon = field.indexOf(':');
  const name = trimWsp(field.slice(0, colon)).toLowerCase();
  const value = trimWsp(field.slice(colon + 1).replace(/\r\n(?=[ \t])/g, '').replace(/\r\n$/, '').replace(/[ \t]+/g, ' '));
  return `${name}:${value}`;
}
