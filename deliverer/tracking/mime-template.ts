// A message's body as a template for tracking: its bytes as they are, except each HTML part,
// which is kept decoded and planned (html-plan.ts) so that every recipient's copy costs only
// filling in tokens and encoding that part again. What is not an HTML part (html-parts.ts) is
// passed through byte for byte.
import { headerBlockEnd } from '../../shared/mail/headers.ts';
import { charsetView } from './charset-view.ts';
import { planHtml, type HtmlSegment } from './html-plan.ts';
import { htmlParts, type HtmlPart } from './html-parts.ts';
import { decodeWithPositions, encodedLiterals, type QpDecoded } from './quoted-printable.ts';

export type PartEncoding = 'base64' | 'quoted-printable' | 'identity';

export interface HtmlPartTemplate {
  encoding: PartEncoding;
  segments: HtmlSegment[];
  /** Back to the part's charset. */
  encode: (text: string) => Buffer;
  /** Quoted-printable parts: the literal segments as the sender encoded them (quoted-printable.ts). */
  qpLiterals?: (string | undefined)[];
  /** Line breaks that ended the encoded part (a part at the end of a message); the one before a boundary is the boundary's. */
  trailer: string;
}

export interface TrackingTemplate {
  /** From the empty line that ends the header block to the end: pass-through bytes and HTML parts. */
  pieces: (Buffer | HtmlPartTemplate)[];
  /** How many links and pixels the HTML parts hold; nothing to track when 0. */
  slots: number;
}

function encodingOf(part: HtmlPart): PartEncoding | undefined {
  const encoding = part.encoding;
  if (encoding === 'base64' || encoding === 'quoted-printable') return encoding;
  return encoding === '7bit' || encoding === '8bit' || encoding === 'binary' ? 'identity' : undefined;
}

/** The part's bytes (one character per byte), and for quoted-printable where each one's encoding starts (quoted-printable.ts). */
function decodePart(encoded: string, encoding: PartEncoding): { latin1: string; qp?: QpDecoded } {
  if (encoding === 'base64') return { latin1: Buffer.from(encoded, 'base64').toString('latin1') };
  if (encoding === 'identity') return { latin1: encoded };
  const qp = decodeWithPositions(encoded);
  return { latin1: qp.text, qp };
}

/** The template of one HTML part, or undefined when it holds nothing to track. */
function partTemplate(raw: Buffer, part: HtmlPart, options: { opens: boolean; clicks: boolean }): HtmlPartTemplate | undefined {
  const encoding = encodingOf(part);
  if (!encoding) return undefined;
  const encoded = raw.toString('latin1', part.bodyStart, part.bodyEnd);
  let end = encoded.length;
  while (end > 0 && (encoded.charCodeAt(end - 1) === 0x0a || encoded.charCodeAt(end - 1) === 0x0d)) end--;
  const body = encoded.slice(0, end);
  const { latin1, qp } = decodePart(body, encoding);
  const view = charsetView(latin1, part.charset);
  // Quoted-printable would leave the line-break bytes inside UTF-16 characters as line breaks: such a part stays untracked.
  if (!view.asciiCompatible && encoding !== 'base64') return undefined;
  const segments = planHtml(view.text, { ...options, decodeCharset: view.decodeCharset, scanText: view.scan });
  if (!segments.some((s) => typeof s !== 'string')) return undefined;
  return { encoding, segments, encode: view.encode, trailer: encoded.slice(end), ...(qp ? { qpLiterals: encodedLiterals(segments, body, qp) } : {}) };
}

/**
 * The template of `raw` (a whole message) for the given tracking, or undefined when its HTML
 * parts hold nothing to track (no HTML, or clicks only and no trackable link). A part with
 * nothing to track keeps its bytes as they are, however other parts change.
 */
export function trackingTemplate(raw: Buffer, options: { opens: boolean; clicks: boolean }): TrackingTemplate | undefined {
  const blank = headerBlockEnd(raw);
  if (blank === -1) return undefined;
  const pieces: TrackingTemplate['pieces'] = [];
  let slots = 0;
  let passed = blank; // the root's header block is the copy's own (fan-out rewrote it)
  for (const part of htmlParts(raw)) {
    const template = partTemplate(raw, part, options);
    if (!template) continue;
    pieces.push(raw.subarray(passed, part.bodyStart), template);
    passed = part.bodyEnd;
    slots += template.segments.filter((s) => typeof s !== 'string').length;
  }
  if (!slots) return undefined;
  pieces.push(raw.subarray(passed));
  return { pieces, slots };
}
