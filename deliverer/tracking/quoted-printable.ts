// Quoted-printable HTML parts rewritten without decoding and encoding the whole part again: the
// part is decoded once keeping, for every decoded character, where its encoding starts; the
// links are found in the decoded text; and each recipient's copy is the sender's encoded text,
// byte for byte, with only the tracked attributes and the pixels spliced in. Each splice starts
// and ends with a soft line break ("=" CRLF, legal anywhere between encoded characters) and is
// wrapped at 76 characters, so no line grows past what the sender's encoder wrote.
import { encode as qpEncode, wrap as qpWrap } from 'libqp';
import type { HtmlSegment } from './html-plan.ts';

export interface QpDecoded {
  /** The decoded bytes, one character per byte. */
  text: string;
  /**
   * For each decoded character, where its encoding starts in the encoded text; one more entry:
   * the end. Valid until the next decode (one buffer serves them all: a part is planned at once).
   */
  at: Int32Array;
}

const hex = (code: number) => (code >= 0x30 && code <= 0x39 ? code - 0x30 : code >= 0x41 && code <= 0x46 ? code - 0x37 : code >= 0x61 && code <= 0x66 ? code - 0x57 : -1);

const isBlank = (code: number) => code === 0x20 || code === 0x09;

/** Where the run of blanks from `i` ends, and whether it ends a line (transport padding, not the sender's). */
function blankRun(encoded: string, i: number): { end: number; padding: boolean } {
  let j = i;
  while (isBlank(encoded.charCodeAt(j))) j++;
  const next = encoded.charCodeAt(j);
  return { end: j, padding: j === encoded.length || next === 0x0a || (next === 0x0d && encoded.charCodeAt(j + 1) === 0x0a) };
}

/** One buffer for every decode's bytes and positions (a part is planned at once), grown as needed. */
let bytes = Buffer.alloc(64 * 1024);
let positions = new Int32Array(64 * 1024);

/** RFC 2045 6.7, leniently as mail readers do: "=XX" a byte, "=" CRLF nothing, blanks before a line end nothing, any other "=" itself. */
export function decodeWithPositions(encoded: string): QpDecoded {
  if (positions.length < encoded.length + 1) {
    positions = new Int32Array(Math.max(encoded.length + 1, positions.length * 2));
    bytes = Buffer.alloc(positions.length);
  }
  const at = positions;
  let n = 0;
  let i = 0;
  while (i < encoded.length) {
    const code = encoded.charCodeAt(i);
    if (code === 0x3d /* = */) {
      const next = encoded.charCodeAt(i + 1);
      if (next === 0x0d && encoded.charCodeAt(i + 2) === 0x0a) { i += 3; continue; }
      if (next === 0x0a) { i += 2; continue; }
      const high = hex(next);
      const low = hex(encoded.charCodeAt(i + 2));
      if (high >= 0 && low >= 0) {
        at[n] = i;
        bytes[n++] = high * 16 + low;
        i += 3;
        continue;
      }
    } else if (isBlank(code)) {
      // The whole run at once: looking ahead from each blank of a long run would be quadratic.
      const run = blankRun(encoded, i);
      if (!run.padding) {
        for (; i < run.end; i++) {
          at[n] = i;
          bytes[n++] = encoded.charCodeAt(i);
        }
      }
      i = run.end;
      continue;
    }
    at[n] = i;
    bytes[n++] = code;
    i++;
  }
  at[n] = encoded.length;
  return { text: bytes.toString('latin1', 0, n), at: at.subarray(0, n + 1) };
}

/** A CRLF for every line break of the text (mail's line ends), the rest encoded. */
const encodeLatin1 = (text: string) => qpEncode(Buffer.from(text.replace(/\r\n|\r|\n/g, '\r\n'), 'latin1'));

const SOFT_BREAK = '=\r\n';
/** Lines are at most 76 characters; a soft break's "=" is one of them. */
const WRAP_AT = 75;

/**
 * The part's literal pieces as the sender encoded them (slices of `encoded`), for segments that
 * were planned on `decoded.text`: a literal takes its length of decoded text, a link slot the
 * length of its original attribute, a pixel nothing.
 */
export function encodedLiterals(segments: HtmlSegment[], encoded: string, decoded: QpDecoded): (string | undefined)[] {
  let position = 0;
  return segments.map((segment) => {
    if (typeof segment !== 'string') {
      if (segment.kind === 'link') position += segment.original.length;
      return undefined;
    }
    const start = position;
    position += segment.length;
    return encoded.slice(decoded.at[start], decoded.at[position]);
  });
}

/** The pixel's markup around its URL, encoded once. */
export function encodedPixel(pixel: (url: string) => string): { head: string; tail: string } {
  const [head, tail] = `\r\n${pixel('\u0000')}\r\n`.split('\u0000') as [string, string];
  return { head: encodeLatin1(head), tail: encodeLatin1(tail) };
}

/**
 * One recipient's part: the sender's encoded text with its URLs spliced in (which need no
 * escaping: an origin and a base64url token). A splice takes the line it lands in with it, wraps
 * the two together, and ends with a soft line break, so the rest of the sender's line follows on
 * a line of its own: no line grows, wherever the splice falls.
 */
export function fillQuotedPrintable(segments: HtmlSegment[], literals: (string | undefined)[], urls: { link: (t: string) => string; pixel: (w: 'open' | 'initial_open') => string },
  pixel: { head: string; tail: string }): string {
  let done = ''; // whole lines
  let line = ''; // the line being written
  const append = (encoded: string) => {
    const lastBreak = encoded.lastIndexOf('\n');
    if (lastBreak === -1) line += encoded;
    else {
      done += line + encoded.slice(0, lastBreak + 1);
      line = encoded.slice(lastBreak + 1);
    }
  };
  const splice = (inserted: string) => {
    // A blank the sender left before what now becomes a line end would be read as padding and lost: it is escaped.
    if (inserted.startsWith('\r') && /[ \t]$/.test(line)) line = `${line.slice(0, -1)}${line.endsWith(' ') ? '=20' : '=09'}`;
    done += `${qpWrap(line + inserted, WRAP_AT)}${SOFT_BREAK}`;
    line = '';
  };
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (typeof segment === 'string') append(literals[i]!);
    else if (segment.kind === 'pixel') splice(`${pixel.head}${urls.pixel(segment.which)}${pixel.tail}`);
    else splice(`${segment.space === ' ' || !segment.space ? ' ' : encodeLatin1(segment.space)}href=3D"${urls.link(segment.target)}"`);
  }
  return done + line;
}
