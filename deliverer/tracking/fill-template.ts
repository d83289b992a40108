// One recipient's body from a tracking template: each link slot gets its tracked URL, each pixel
// slot its image. A base64 part is encoded again (76-character lines); a quoted-printable part
// is the sender's encoded text with the slots spliced in (quoted-printable.ts). A part sent as
// it is (7bit, 8bit) keeps every line within RFC 5322's 998 characters: a rewritten link starts
// a new line inside its tag where needed (a line break between attributes means nothing to
// HTML), or stays untracked.
import type { HtmlSegment } from './html-plan.ts';
import type { HtmlPartTemplate, TrackingTemplate } from './mime-template.ts';
import { encodedPixel, fillQuotedPrintable } from './quoted-printable.ts';

export interface TrackingUrls {
  link: (target: string) => string;
  pixel: (which: 'open' | 'initial_open') => string;
}

const MAX_LINE = 998;
const PIXEL_STYLE = 'height:1px !important;width:1px !important;border-width:0 !important;margin:0 !important;padding:0 !important';

export function pixelTag(url: string): string {
  return `<img border="0" width="1" height="1" alt="" style="${PIXEL_STYLE}" src="${url}">`;
}

const QP_PIXEL = encodedPixel(pixelTag);

/** Characters since the last line break, after `text` is appended to a line `column` long. */
function columnAfter(column: number, text: string): number {
  const lastBreak = text.lastIndexOf('\n');
  return lastBreak === -1 ? column + text.length : text.length - lastBreak - 1;
}

function fillSegments(segments: HtmlSegment[], urls: TrackingUrls, keepLinesShort: boolean): string {
  let out = '';
  let column = 0;
  for (const segment of segments) {
    let piece: string;
    if (typeof segment === 'string') piece = segment;
    else if (segment.kind === 'pixel') piece = `\r\n${pixelTag(urls.pixel(segment.which))}\r\n`;
    else {
      const attribute = `href="${urls.link(segment.target)}"`;
      piece = `${segment.space || ' '}${attribute}`;
      if (keepLinesShort && column + piece.length > MAX_LINE) {
        piece = attribute.length <= MAX_LINE ? `\r\n${attribute}` : segment.original;
      }
    }
    out += piece;
    column = columnAfter(column, piece);
  }
  return out;
}

function base64Lines(bytes: Buffer): string {
  return bytes.toString('base64').replace(/.{76}(?=.)/g, '$&\r\n');
}

/** One HTML part of the copy: text to write one character per byte, or bytes (a charset that is not ASCII-compatible). */
function encodePart(part: HtmlPartTemplate, urls: TrackingUrls): string | Buffer {
  // The line break before a boundary belongs to the boundary; only line breaks that ended the part are its own.
  if (part.qpLiterals) return `${fillQuotedPrintable(part.segments, part.qpLiterals, urls, QP_PIXEL)}${part.trailer}`;
  const bytes = part.encode(fillSegments(part.segments, urls, part.encoding === 'identity'));
  if (part.encoding === 'identity') return Buffer.concat([bytes, Buffer.from(part.trailer, 'latin1')]);
  return `${base64Lines(bytes)}${part.trailer}`;
}

/** The body (from the empty line that ends the header block) one recipient receives, written into one buffer. */
export function fillTemplate(template: TrackingTemplate, urls: TrackingUrls): Buffer {
  const pieces = template.pieces.map((piece) => (Buffer.isBuffer(piece) ? piece : encodePart(piece, urls)));
  const body = Buffer.allocUnsafe(pieces.reduce((sum, piece) => sum + piece.length, 0));
  let at = 0;
  for (const piece of pieces) at += typeof piece === 'string' ? body.write(piece, at, 'latin1') : piece.copy(body, at);
  return body;
}
