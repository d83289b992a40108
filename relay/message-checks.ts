// What the relay checks after the final dot, on the headers only, before a message is
// queued: well-formed lines, a From at a sending domain of the key's namespace, and a valid
// X-MT-ATTR. Each failure is a specific SMTP reply.
import { domainToASCII } from 'node:url';
import libmime from 'libmime';
import { EMPTY_ATTRIBUTES, X_MT_ATTR, parseAttributes, type MessageAttributes } from '../shared/attributes/x-mt-attr.ts';
import type { ConfigStore } from '../shared/config/store.ts';
import { fieldValues, headerBlockEnd, parseHeaderBlock } from '../shared/mail/headers.ts';
import { hasBareLineBreak } from '../shared/mail/line-endings.ts';
import { addressparser, type Address } from '../shared/mail/nodemailer-internals.ts';
import { RefusalError, smtpReply } from '../shared/smtp-replies.ts';

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
  if (!hasBareLineBreak(raw)) return raw;
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

/** A From domain must be one mtrelay can sign for: a SendingDomain of the account with its DKIM key, or the sandbox domain with its. */
function checkSigned(domain: string, namespace: string, policy: MessagePolicy): void {
  if (policy.sandboxDomain && domain === policy.sandboxDomain) {
    const sandbox = policy.store.claimedDomain(domain);
    if (!sandbox || sandbox.noDkimKey) throw smtpReply('SANDBOX_WITHOUT_DKIM_KEY', { domain });
    return;
  }
  const configured = policy.store.sendingDomain(namespace, domain);
  if (!configured) throw smtpReply('UNCONFIGURED_SENDING_DOMAIN', { domain });
  if (configured.noDkimKey) throw smtpReply('SENDING_DOMAIN_WITHOUT_DKIM_KEY', { domain, resource: `${namespace}/${configured.resource}` });
}

function checkFrom(values: string[], namespace: string, policy: MessagePolicy): string {
  if (values.length === 0) throw smtpReply('NO_FROM');
  if (values.length > 1) throw smtpReply('MULTIPLE_FROM');
  const addresses = mailboxes(addressparser(values[0]!));
  if (addresses.length === 0) throw smtpReply('FROM_WITHOUT_ADDRESS');
  let sendingDomain: string | undefined;
  for (const address of addresses) {
    const domain = addressDomain(address);
    if (!domain) throw smtpReply('FROM_WITHOUT_DOMAIN', { address });
    checkSigned(domain, namespace, policy);
    sendingDomain ??= domain;
  }
  return sendingDomain!;
}

function checkAttributes(values: string[], maxAddresses: number): MessageAttributes {
  if (values.length === 0) return EMPTY_ATTRIBUTES;
  if (values.length > 1) throw smtpReply('ATTR_REPEATED');
  // Clients such as nodemailer send a long value as RFC 2047 encoded words.
  const value = values[0]!.includes('=?') ? libmime.decodeWords(values[0]!) : values[0]!;
  try {
    return parseAttributes(value, maxAddresses);
  } catch (error) {
    throw error instanceof RefusalError ? error.toSmtpReply() : error;
  }
}

/** Checks a complete message for a key of `namespace`; throws an SmtpReply when it is refused. */
export function checkMessage(received: Buffer, namespace: string, policy: MessagePolicy): CheckedMessage {
  if (received.indexOf(0) !== -1) throw smtpReply('NUL_BYTE');
  const raw = normalizeLineEndings(received);
  const end = headerBlockEnd(raw);
  const headerLength = end === -1 ? raw.length : end;
  if (headerLength > policy.maxHeaderBytes) throw smtpReply('HEADER_TOO_BIG', { limit: policy.maxHeaderBytes });
  let fields;
  try {
    fields = parseHeaderBlock(raw.toString('utf8', 0, headerLength));
  } catch (error) {
    throw error instanceof RefusalError ? error.toSmtpReply() : error;
  }
  const sendingDomain = checkFrom(fieldValues(fields, 'from'), namespace, policy);
  const attributes = checkAttributes(fieldValues(fields, X_MT_ATTR), policy.maxAttrAddresses);
  return { raw, sendingDomain, attributes };
}
