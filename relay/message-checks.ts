// What the relay checks after the final dot, on the headers only, before a message is
// queued: well-formed lines, a From at a sending domain of the key's namespace, and a valid
// X-MT-ATTR. Each failure is a specific SMTP reply.
import { domainToASCII } from 'node:url';
import libmime from 'libmime';
import addressparser, { type Address } from 'nodemailer/lib/addressparser';
import { AttributeError, EMPTY_ATTRIBUTES, X_MT_ATTR, parseAttributes, type MessageAttributes } from '../shared/attributes/x-mt-attr.ts';
import type { ConfigStore } from '../shared/config/store.ts';
import { HeaderError, fieldValues, headerBlockEnd, parseHeaderBlock } from '../shared/mail/headers.ts';
import { reply } from './replies.ts';

export interface MessagePolicy {
  store: ConfigStore;
  sandboxDomain: string;
  maxHeaderBytes: number;
  maxAttrAddresses: number;
}

export interface CheckedMessage {
  /** The message as it will be queued (line endings normalized to CRLF when they were not). */
  raw: Buffer;
  sendingDomain: string;
  attributes: MessageAttributes;
}

/** Bare LF or bare CR become CRLF; a message that has none is returned untouched. */
export function normalizeLineEndings(raw: Buffer): Buffer {
  let bare = false;
  for (let i = raw.indexOf(0x0a); i !== -1 && !bare; i = raw.indexOf(0x0a, i + 1)) bare = i === 0 || raw[i - 1] !== 0x0d;
  for (let i = raw.indexOf(0x0d); i !== -1 && !bare; i = raw.indexOf(0x0d, i + 1)) bare = raw[i + 1] !== 0x0a;
  if (!bare) return raw;
  return Buffer.from(raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

function mailboxes(list: Address[]): string[] {
  return list.flatMap((a) => (a.group ? mailboxes(a.group) : a.address ? [a.address] : []));
}

export function addressDomain(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  const ascii = domainToASCII(address.slice(at + 1).replace(/\.$/, ''));
  return ascii ? ascii.toLowerCase() : undefined;
}

function checkFrom(values: string[], namespace: string, policy: MessagePolicy): string {
  if (values.length === 0) throw reply.malformed('Message has no From header (RFC 5322 3.6)');
  if (values.length > 1) throw reply.malformed('Message has more than one From header (RFC 5322 3.6)');
  const addresses = mailboxes(addressparser(values[0]!));
  if (addresses.length === 0) throw reply.malformed('From header has no address');
  let sendingDomain: string | undefined;
  for (const address of addresses) {
    const domain = addressDomain(address);
    if (!domain) throw reply.malformed(`From address <${address}> has no valid domain`);
    if (domain !== policy.sandboxDomain && !policy.store.sendingDomain(namespace, domain)) {
      throw reply.unconfiguredDomain(domain);
    }
    sendingDomain ??= domain;
  }
  return sendingDomain!;
}

function checkAttributes(values: string[], maxAddresses: number): MessageAttributes {
  if (values.length === 0) return EMPTY_ATTRIBUTES;
  if (values.length > 1) throw reply.attrSchema('header: appears more than once');
  // Clients such as nodemailer send a long value as RFC 2047 encoded words.
  const value = values[0]!.includes('=?') ? libmime.decodeWords(values[0]!) : values[0]!;
  try {
    return parseAttributes(value, maxAddresses);
  } catch (error) {
    if (!(error instanceof AttributeError)) throw error;
    throw error.kind === 'json' ? reply.attrJson(error.message) : reply.attrSchema(error.message);
  }
}

/** Checks a complete message for a key of `namespace`; throws an SmtpReply when it is refused. */
export function checkMessage(received: Buffer, namespace: string, policy: MessagePolicy): CheckedMessage {
  if (received.indexOf(0) !== -1) throw reply.malformed('Message contains a NUL byte (RFC 5322 2.1)');
  const raw = normalizeLineEndings(received);
  const end = headerBlockEnd(raw);
  const headerLength = end === -1 ? raw.length : end;
  if (headerLength > policy.maxHeaderBytes) throw reply.headerTooBig(policy.maxHeaderBytes);
  let fields;
  try {
    fields = parseHeaderBlock(raw.toString('utf8', 0, headerLength));
  } catch (error) {
    if (error instanceof HeaderError) throw reply.malformed(error.message);
    throw error;
  }
  const sendingDomain = checkFrom(fieldValues(fields, 'from'), namespace, policy);
  const attributes = checkAttributes(fieldValues(fields, X_MT_ATTR), policy.maxAttrAddresses);
  return { raw, sendingDomain, attributes };
}
