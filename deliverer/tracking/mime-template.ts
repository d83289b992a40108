// A message's body as a template for tracking: its bytes as they are, except each HTML part,
// which is kept decoded and planned (html-plan.ts) so that every recipient's copy costs only
// filling in tokens and encoding that part again. mailsplit walks the MIME structure as a
// stream of nodes and gives each node's bytes back unchanged, so what is not an HTML part is
// passed through byte for byte; a forwarded message (message/rfc822) is left as it is.
import { Splitter } from 'mailsplit';
import { headerBlockEnd } from '../../shared/mail/headers.ts';
import { charsetView } from './charset-view.ts';
import { planHtml, type HtmlSegment } from './html-plan.ts';
import { decodeWithPositions, encodedLiterals } from './quoted-printable.ts';

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

interface SplitterData {
  type: 'node' | 'data' | 'body';
  value?: Buffer;
  root?: boolean;
  contentType?: string | false;
  charset?: string | false;
  encoding?: string | false;
  disposition?: string | false;
  getHeaders?: () => Buffer;
}

function encodingOf(node: SplitterData): PartEncoding | undefined {
  const encoding = (node.encoding || '7bit').toLowerCase();
  if (encoding === 'base64' || encoding === 'quoted-printable') return encoding;
  return encoding === '7bit' || encoding === '8bit' || encoding === 'binary' ? 'identity' : undefined;
}

/** The part's bytes, and for quoted-printable where each decoded byte's encoding starts (quoted-printable.ts). */
function decodePart(encoded: string, encoding: PartEncoding): { bytes: Buffer; qp?: ReturnType<typeof decodeWithPositions> } {
  if (encoding === 'base64') return { bytes: Buffer.from(encoded, 'base64') };
  if (encoding === 'identity') return { bytes: Buffer.from(encoded, 'latin1') };
  const qp = decodeWithPositions(encoded);
  return { bytes: Buffer.from(qp.text, 'latin1'), qp };
}

function splitNodes(raw: Buffer): Promise<SplitterData[]> {
  return new Promise((resolve, reject) => {
    const items: SplitterData[] = [];
    const splitter = new Splitter({ ignoreEmbedded: true });
    splitter.on('data', (item: SplitterData) => items.push(item));
    splitter.on('end', () => resolve(items));
    splitter.on('error', reject);
    splitter.end(raw);
  });
}

/**
 * The template of `raw` (a whole message) for the given tracking, or undefined when its HTML
 * parts hold nothing to track (no HTML, or clicks only and no trackable link).
 */
export async function trackingTemplate(raw: Buffer, options: { opens: boolean; clicks: boolean }): Promise<TrackingTemplate | undefined> {
  const pieces: TrackingTemplate['pieces'] = [];
  let slots = 0;
  let html: { node: SplitterData; chunks: Buffer[]; encoding: PartEncoding } | undefined;
  const finishHtml = () => {
    if (!html) return;
    const encoded = Buffer.concat(html.chunks).toString('latin1');
    let end = encoded.length;
    while (end > 0 && (encoded.charCodeAt(end - 1) === 0x0a || encoded.charCodeAt(end - 1) === 0x0d)) end--;
    const trailer = encoded.slice(end);
    const body = encoded.slice(0, end);
    const { bytes, qp } = decodePart(body, html.encoding);
    const view = charsetView(bytes, html.node.charset, qp?.text);
    // Quoted-printable would leave the line-break bytes inside UTF-16 characters as line breaks: such a part stays untracked.
    const segments = view.asciiCompatible || html.encoding === 'base64'
      ? planHtml(view.text, { ...options, decodeCharset: view.decodeCharset, scanText: view.scan }) : [];
    const partSlots = segments.filter((s) => typeof s !== 'string').length;
    // A part with nothing to track keeps its bytes as they are, however other parts change.
    if (partSlots) {
      pieces.push({ encoding: html.encoding, segments, encode: view.encode, trailer, ...(qp ? { qpLiterals: encodedLiterals(segments, body, qp) } : {}) });
    }
    else pieces.push(...html.chunks);
    slots += partSlots;
    html = undefined;
  };
  for (const item of await splitNodes(raw)) {
    if (item.type === 'node') {
      finishHtml();
      // The root's header block is the copy's own (fan-out rewrote it); only its closing empty line belongs to the body.
      const headers = item.getHeaders!();
      if (!item.root) pieces.push(headers);
      else if (headerBlockEnd(raw) !== -1) pieces.push(raw.subarray(headerBlockEnd(raw), headers.length));
      const encoding = encodingOf(item);
      if (item.contentType === 'text/html' && item.disposition !== 'attachment' && encoding) html = { node: item, chunks: [], encoding };
    } else if (item.type === 'body' && html) {
      html.chunks.push(item.value!);
    } else {
      finishHtml();
      pieces.push(item.value!);
    }
  }
  finishHtml();
  return slots ? { pieces, slots } : undefined;
}
