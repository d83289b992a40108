// Turns one submission into one message per recipient, exactly as the seed describes:
// envelope recipients plus one copy per address in X-MT-ATTR cc, bcc and archive; every
// copy shows Cc with all cc addresses; a bcc copy carries Bcc with only its own address;
// archive copies (and all others) carry no Bcc; the sender's To is kept; each address gets
// one copy even when listed twice; X-MT-ATTR is removed. Each copy names its transmission and
// account in X-MT-Transmission (a client's own field of that name is removed).
import libmime from 'libmime';
import type { Recipient } from '../shared/attributes/x-mt-attr.ts';
import type { Submission } from '../shared/submission-record.ts';
import { headerBlockEnd, splitRawFields } from '../shared/mail/headers.ts';
import { TRANSMISSION_FIELD_NAME, transmissionField } from '../shared/mail/transmission-field.ts';
import { recipients, type RcptType } from '../shared/mail/recipients.ts';

/** The line that ends a header block. */
const EMPTY_LINE = Buffer.from('\r\n');

export type { RcptType };

/**
 * What one recipient receives (not yet signed). Copies share the body buffer, and all but
 * bcc copies share one header buffer too, so a thousand recipients do not mean a thousand
 * copies of the message in memory. They are sent as those pieces, never joined.
 */
export interface Copy {
  rcptTo: string;
  rcptType: RcptType;
  header: Buffer;
  /** The empty line that ends the header block, then the body. */
  body: Buffer;
  /** Set when the body was given this recipient's tracked links and pixels. */
  tracked?: { opens: boolean; clicks: boolean };
}

/** The body as DKIM sees it: what follows the empty line that ends the header block. */
export function bodyContent(copy: Copy): Buffer {
  return copy.body.subarray(copy.body[0] === 0x0d && copy.body[1] === 0x0a ? 2 : 0);
}

function formatAddress(r: Recipient): string {
  if (!r.name) return r.email;
  // Every word encoded when any is not ASCII: a bare comma or angle bracket would split the address.
  const name = /^[\x20-\x7e]*$/.test(r.name) ? `"${r.name.replace(/(["\\])/g, '\\$1')}"` : libmime.encodeWord(r.name, 'Q', 52);
  return `${name} <${r.email}>`;
}

/** A header field folded at 78 characters, between addresses where possible. */
function addressField(name: string, recipients: Recipient[]): string {
  return `${libmime.foldLines(`${name}: ${recipients.map(formatAddress).join(', ')}`, 76).replace(/(\r\n)*$/, '')}\r\n`;
}

function rfc5322Date(iso: string): string {
  return new Date(iso).toUTCString().replace('GMT', '+0000');
}

/**
 * The trace field RFC 5321 4.4 requires of every relay; the transmission and its account, which
 * bounces and complaints that return the original headers are matched by (transmission-field.ts);
 * and Message-ID and Date when the client left them out.
 */
function addedFields(submission: Submission, present: Set<string>): string {
  const protocol = submission.tls === 'none' ? 'ESMTPA' : 'ESMTPSA'; // RFC 3848
  const date = rfc5322Date(submission.receivedAt);
  let fields = `Received: from [${submission.clientAddress}] by mtrelay with ${protocol} id ${submission.transmissionId};\r\n ${date}\r\n`;
  fields += `${transmissionField(submission.transmissionId, submission.namespace)}\r\n`;
  if (!present.has('message-id')) fields += `Message-ID: <${submission.transmissionId}@${submission.sendingDomain}>\r\n`;
  if (!present.has('date')) fields += `Date: ${date}\r\n`;
  return fields;
}

export function fanOut(raw: Buffer, submission: Submission): Copy[] {
  const end = headerBlockEnd(raw);
  const headerLength = end === -1 ? raw.length : end;
  // A message that is all header (no empty line, no body) gets the empty line that ends its header:
  // found by the fuzzer, a verifier (mailauth) did not find the DKIM signature of such a copy.
  const body = end === -1 ? EMPTY_LINE : raw.subarray(headerLength);
  const { cc } = submission.attributes;
  // X-MT-ATTR goes; Bcc never reaches anyone but its own recipient; Cc is rebuilt from the cc list.
  const fields = splitRawFields(raw.toString('latin1', 0, headerLength));
  const kept = fields
    .filter((f) => f.name !== 'x-mt-attr' && f.name !== TRANSMISSION_FIELD_NAME && f.name !== 'bcc' && !(cc.length && f.name === 'cc'))
    .map((f) => f.raw)
    .join('');
  const added = addedFields(submission, new Set(fields.map((f) => f.name)));
  const ccField = cc.length ? addressField('Cc', cc) : '';
  const common = Buffer.concat([Buffer.from(added, 'latin1'), Buffer.from(kept, 'latin1'), Buffer.from(ccField, 'utf8')]);
  const bccByAddress = new Map(submission.attributes.bcc.map((r) => [r.email.toLowerCase(), r]));
  return recipients(submission).map(({ email, type }) => {
    const header = type === 'bcc'
      ? Buffer.concat([common, Buffer.from(addressField('Bcc', [bccByAddress.get(email.toLowerCase())!]), 'utf8')])
      : common;
    return { rcptTo: email, rcptType: type, header, body };
  });
}
