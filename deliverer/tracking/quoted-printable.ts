// Quoted-printable HTML parts filled without encoding the whole part again for every recipient:
// the literal pieces are encoded once, with the template, and each recipient's copy joins them
// with its URLs (which need no escaping: an origin and a base64url token) and wraps the lines.
// Encoding pieces apart only ever escapes a character more than needed (a space at a piece's end,
// a "-" at its start), which any decoder reads the same.
import { encode as qpEncode, wrap as qpWrap } from 'libqp';
import type { HtmlSegment } from './html-plan.ts';

export type PixelMarkup = (url: string) => string;

/** Quoted-printable keeps line breaks literal: a bare CR or LF the sender encoded becomes a CRLF, as mail requires. */
const crlf = (text: string) => text.replace(/\r\n|\r|\n/g, '\r\n');

const encodeLatin1 = (text: string) => qpEncode(Buffer.from(crlf(text), 'latin1'));

/** Each literal piece encoded; slots left for the recipient. */
export function encodeLiterals(segments: HtmlSegment[]): (string | undefined)[] {
  return segments.map((s) => (typeof s === 'string' ? encodeLatin1(s) : undefined));
}

/** The pixel's markup around its URL, encoded once. */
export function encodedPixel(pixel: PixelMarkup): { head: string; tail: string } {
  const [head, tail] = `\r\n${pixel('\u0000')}\r\n`.split('\u0000') as [string, string];
  return { head: encodeLatin1(head), tail: encodeLatin1(tail) };
}

export function fillQuotedPrintable(segments: HtmlSegment[], literals: (string | undefined)[], urls: { link: (t: string) => string; pixel: (w: 'open' | 'initial_open') => string },
  pixel: { head: string; tail: string }): string {
  let out = '';
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (typeof segment === 'string') out += literals[i]!;
    else if (segment.kind === 'pixel') out += `${pixel.head}${urls.pixel(segment.which)}${pixel.tail}`;
    else out += `${segment.space === ' ' || !segment.space ? ' ' : encodeLatin1(segment.space)}href=3D"${urls.link(segment.target)}"`;
  }
  return qpWrap(out, 76);
}
