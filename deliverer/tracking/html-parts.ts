// Where a message's HTML parts are: a walk over the message's bytes that follows multipart
// boundaries (RFC 2046 5.1.1) and reads only the header fields that say what a part is. It
// builds no objects for the rest: the bytes between HTML parts are passed through as they are
// (mime-template.ts). The message is in memory and its lines end in CRLF (the relay stores it
// so). A forwarded message (message/rfc822) is not entered: its HTML is the original sender's.
import libmime from 'libmime';

export interface HtmlPart {
  /** Offsets in the message of the part's encoded body, without the line break before the next boundary. */
  bodyStart: number;
  bodyEnd: number;
  /** Lower case, as written: "base64", "quoted-printable", "7bit", … ("7bit" when absent). */
  encoding: string;
  charset?: string;
}

interface PartHeader {
  contentType: string;
  params: Record<string, string>;
  encoding: string;
  disposition: string;
}

const FIELDS = /^(content-type|content-transfer-encoding|content-disposition)[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)/gim;

/** The fields that say what a part is, from its header block (the first of each counts). */
function partHeader(block: string, defaultType: string): PartHeader {
  const values = new Map<string, string>();
  for (const [, name, value] of block.matchAll(FIELDS)) {
    const key = name!.toLowerCase();
    if (!values.has(key)) values.set(key, value!.replace(/\r\n/g, ''));
  }
  const type = libmime.parseHeaderValue(values.get('content-type') ?? defaultType) as { value: string; params: Record<string, string> };
  return {
    contentType: type.value.trim().toLowerCase() || defaultType,
    params: type.params,
    encoding: (values.get('content-transfer-encoding') ?? '7bit').trim().toLowerCase(),
    disposition: libmime.parseHeaderValue(values.get('content-disposition') ?? '').value.trim().toLowerCase(),
  };
}

/** Deeper nesting or more parts than this and the rest of the message is left as it is: a walk must stay linear in the message's size. */
const MAX_DEPTH = 20;
const MAX_PARTS = 1000;

/** `needle` in raw[from, end) only: a search that never runs past the part it is about. */
function indexWithin(raw: Buffer, needle: string, from: number, end: number): number {
  if (from >= end) return -1;
  const found = raw.subarray(from, end).indexOf(needle, 0, 'latin1');
  return found === -1 ? -1 : from + found;
}

/** Where the line starting at `at` ends (before its CRLF), or the end. */
function lineEnd(raw: Buffer, at: number, end: number): number {
  const found = indexWithin(raw, '\r\n', at, end);
  return found === -1 ? end : found;
}

/**
 * The delimiter lines of `boundary` in raw[start, end): each line's start and the start of what
 * follows it, and whether it closes. A delimiter starts a line, is "--" and the boundary, then
 * "--" for the last one, then only blanks (transport padding) to the line's end.
 */
function delimiters(raw: Buffer, boundary: string, start: number, end: number): { at: number; next: number; close: boolean }[] {
  const found: { at: number; next: number; close: boolean }[] = [];
  const dashed = `--${boundary}`;
  for (let at = indexWithin(raw, dashed, start, end); at !== -1 && found.length < MAX_PARTS; at = indexWithin(raw, dashed, at + 1, end)) {
    if (at !== start && !(raw[at - 1] === 0x0a && raw[at - 2] === 0x0d)) continue;
    const stop = lineEnd(raw, at, end);
    const rest = raw.toString('latin1', at + dashed.length, stop);
    const close = rest.startsWith('--');
    if (!/^[ \t]*$/.test(close ? rest.slice(2) : rest)) continue; // a longer boundary that starts with this one
    found.push({ at, next: Math.min(stop + 2, end), close });
    if (close) break;
  }
  return found;
}

interface Walk {
  found: HtmlPart[];
  /** Parts entered so far, against MAX_PARTS. */
  parts: number;
}

function walk(raw: Buffer, start: number, end: number, defaultType: string, state: Walk, depth = 0): void {
  if (depth > MAX_DEPTH || ++state.parts > MAX_PARTS) return;
  const blank = indexWithin(raw, '\r\n\r\n', start, end);
  const startsBlank = raw[start] === 0x0d && raw[start + 1] === 0x0a;
  const headerEnd = startsBlank ? start : blank === -1 || blank + 2 > end ? end : blank + 2;
  const bodyStart = Math.min(headerEnd + 2, end);
  const header = partHeader(raw.toString('latin1', start, headerEnd), defaultType);
  const boundary = header.params.boundary;
  if (header.contentType.startsWith('multipart/') && boundary) {
    const childType = header.contentType === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    const lines = delimiters(raw, boundary, bodyStart, end);
    for (let i = 0; i < lines.length && !lines[i]!.close; i++) {
      const next = lines[i + 1];
      // The line break before a delimiter belongs to the delimiter; without a closing one the part runs to the end.
      const partEnd = next ? Math.max(lines[i]!.next, next.at - 2) : end;
      walk(raw, lines[i]!.next, partEnd, childType, state, depth + 1);
    }
    return;
  }
  if (header.contentType === 'text/html' && header.disposition !== 'attachment' && headerEnd < end) {
    state.found.push({ bodyStart, bodyEnd: end, encoding: header.encoding, ...(header.params.charset ? { charset: header.params.charset } : {}) });
  }
}

/** The HTML parts of `raw` (a whole message) that are shown as its text, in order (at most MAX_PARTS parts, MAX_DEPTH deep, are looked at). */
export function htmlParts(raw: Buffer): HtmlPart[] {
  const state: Walk = { found: [], parts: 0 };
  walk(raw, 0, raw.length, 'text/plain', state);
  return state.found;
}
