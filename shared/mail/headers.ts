// Just enough RFC 5322 for the relay and the deliverer: find the header block,
// unfold fields, look them up by name, or split them keeping their bytes. Bodies are never parsed.
import { refusal } from '../smtp-replies.ts';

export const MAX_HEADER_LINE = 998; // RFC 5322 2.1.1, without the CRLF

export interface HeaderField {
  /** Lower-case field name. */
  name: string;
  /** Unfolded value, leading white space removed. */
  value: string;
}


/** Index of the empty line that ends the header block, or -1 when the message is all header. */
export function headerBlockEnd(message: Buffer): number {
  if (message.length >= 2 && message[0] === 0x0d && message[1] === 0x0a) return 0;
  const end = message.indexOf('\r\n\r\n');
  return end === -1 ? -1 : end + 2;
}

/** Parses the header block (without the empty line). Throws a RefusalError (MTR_ERR_HEADER) on a malformed one. */
export function parseHeaderBlock(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = block.split('\r\n');
  if (lines.at(-1) === '') lines.pop();
  let current: { name: string; value: string } | undefined;
  lines.forEach((line, index) => {
    if (line.length > MAX_HEADER_LINE) {
      throw refusal('MTR_ERR_HEADER', 'HEADER_LINE_TOO_LONG', { line: index + 1 });
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!current) throw refusal('MTR_ERR_HEADER', 'HEADER_STARTS_FOLDED');
      current.value += line; // unfolding removes the CRLF and keeps the white space
      return;
    }
    const colon = line.indexOf(':');
    if (colon <= 0 || !/^[\x21-\x39\x3b-\x7e]+$/.test(line.slice(0, colon))) {
      throw refusal('MTR_ERR_HEADER', 'HEADER_LINE_NOT_FIELD', { line: index + 1 });
    }
    current = { name: line.slice(0, colon).toLowerCase(), value: line.slice(colon + 1) };
    fields.push(current);
  });
  return fields.map((f) => ({ name: f.name, value: f.value.trim() }));
}

export function fieldValues(fields: HeaderField[], name: string): string[] {
  return fields.filter((f) => f.name === name).map((f) => f.value);
}

/** One header field as it stands in the message, continuation lines and CRLF included. */
export interface RawField {
  /** Lower-case field name. */
  name: string;
  raw: string;
}

/** Splits a header block into its fields, keeping each field's bytes as they are. */
export function splitRawFields(block: string): RawField[] {
  const fields: RawField[] = [];
  for (const line of block.split(/(?<=\r\n)/)) {
    if (line === '' || line === '\r\n') continue;
    const last = fields.at(-1);
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      last.raw += line;
      continue;
    }
    const colon = line.indexOf(':');
    fields.push({ name: (colon > 0 ? line.slice(0, colon) : line).trim().toLowerCase(), raw: line.endsWith('\r\n') ? line : `${line}\r\n` });
  }
  return fields;
}
