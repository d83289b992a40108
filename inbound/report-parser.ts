// What a message that came back says, read with mailparser: a delivery status notification
// (RFC 3464, multipart/report; report-type=delivery-status), an abuse report from a feedback
// loop (ARF, RFC 5965, report-type=feedback-report), or a bounce in one of the plain-text
// shapes some servers still send (qmail, Exim, Yahoo's "Remote host said"). Anything else (an
// out-of-office reply to a return path, say) is `other`. Pure: matching to a transmission is
// report-matching.ts's work.
import libmime from 'libmime';
import { simpleParser, type Attachment, type ParsedMail } from 'mailparser';
import { parseTransmissionField } from '../shared/mail/transmission-field.ts';

/** What the returned original message (or its headers) says about itself. */
export interface OriginalFacts {
  transmissionId?: string;
  namespace?: string;
  messageId?: string;
  subject?: string;
  from?: string;
  /** The original's first To address. */
  to?: string;
}

export interface BouncedRecipient {
  /** Final-Recipient (or Original-Recipient), or the address a plain-text bounce names. */
  rcptTo?: string;
  /** RFC 3464 Action: failed, delayed, delivered, relayed, expanded. */
  action: string;
  /** Enhanced status code, e.g. 5.1.1. */
  status?: string;
  /** The remote server's reply, as the report quotes it. */
  diagnostic?: string;
  remoteMta?: string;
}

export type ParsedReport =
  | { kind: 'dsn'; recipients: BouncedRecipient[]; reportingMta?: string; original: OriginalFacts }
  | {
    kind: 'arf'; feedbackType: string; userAgent?: string; originalMailFrom?: string; originalRcptTo?: string;
    sourceIp?: string; arrivalDate?: string; reportedDomain?: string; reportingFrom?: string; original: OriginalFacts;
  }
  | { kind: 'other'; why: string; original: OriginalFacts };

/** The fields of one header-like block (RFC 3464 and 5965 use the header syntax), names in lower case. */
function fieldBlock(text: string): Record<string, string> {
  const decoded = libmime.decodeHeaders(text.trim()) as Record<string, string[]>;
  return Object.fromEntries(Object.entries(decoded).map(([name, values]) => [name.toLowerCase(), String(values[0] ?? '').replace(/\s+/g, ' ').trim()]));
}

/** The address of an RFC 3464 address field, "rfc822; user@host" (the type is optional in practice). */
function addressOf(field: string | undefined): string | undefined {
  const value = field?.replace(/^\s*[\w.-]+\s*;\s*/, '').replace(/^<|>$/g, '').trim();
  return value && /^[^\s@<>]+@[^\s@<>]+$/.test(value) ? value : undefined;
}

/** "smtp; 550 5.1.1 …" → "550 5.1.1 …". */
function diagnosticOf(field: string | undefined): string | undefined {
  return field?.replace(/^\s*[\w-]+\s*;\s*/, '').trim() || undefined;
}

function headerText(part: Attachment | undefined): string | undefined {
  if (!part) return undefined;
  const text = part.content.toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  return end === -1 ? text : text.slice(0, end);
}

/** Facts from the returned original's header block. */
function originalFacts(headers: string | undefined): OriginalFacts {
  if (!headers) return {};
  const fields = fieldBlock(headers);
  const transmission = fields['x-mt-transmission'] ? parseTransmissionField(fields['x-mt-transmission']) : undefined;
  const address = (value: string | undefined) => /<([^<>\s]+@[^<>\s]+)>/.exec(value ?? '')?.[1] ?? /([^\s<>,;"]+@[^\s<>,;"]+)/.exec(value ?? '')?.[1];
  const from = address(fields.from);
  const to = address(fields.to);
  return {
    ...(transmission ?? {}),
    ...(fields['message-id'] ? { messageId: fields['message-id'].replace(/^<|>$/g, '') } : {}),
    ...(fields.subject ? { subject: fields.subject } : {}),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
  };
}

const ORIGINAL_TYPES = new Set(['message/rfc822', 'text/rfc822-headers', 'message/rfc822-headers']);

/**
 * The returned original's facts: from its MIME part; or, when the part holds no transmission
 * field (an inline message/rfc822 mailparser read as text, or a plain-text bounce that pastes
 * the original below its text), from the header block around the first X-MT-Transmission
 * field in the raw report.
 */
function original(mail: ParsedMail, raw: string): OriginalFacts {
  const facts = originalFacts(headerText(mail.attachments.find((a) => ORIGINAL_TYPES.has(a.contentType.toLowerCase()))));
  if (facts.transmissionId) return facts;
  const field = /^X-MT-Transmission:/mi.exec(raw);
  if (!field) return facts;
  const start = Math.max(raw.lastIndexOf('\n\n', field.index) + 2, raw.lastIndexOf('\n\r\n', field.index) + 3, 0);
  const end = raw.slice(field.index).search(/\r?\n\r?\n/);
  return { ...facts, ...originalFacts(raw.slice(start, end === -1 ? undefined : field.index + end)) };
}

function deliveryStatus(part: Attachment, mail: ParsedMail, raw: string): ParsedReport {
  // Blocks are separated by empty lines: the per-message fields, then one block per recipient.
  const [perMessage = '', ...perRecipient] = part.content.toString('utf8').replace(/\r\n/g, '\n').split(/\n[ \t]*\n/).filter((b) => b.trim());
  const message = fieldBlock(perMessage);
  const recipients = perRecipient.map(fieldBlock).filter((f) => f.action).map((f): BouncedRecipient => {
    const rcptTo = addressOf(f['final-recipient']) ?? addressOf(f['original-recipient']);
    const diagnostic = diagnosticOf(f['diagnostic-code']);
    const remoteMta = diagnosticOf(f['remote-mta']);
    return { action: f.action!.toLowerCase(), ...(rcptTo ? { rcptTo } : {}), ...(f.status ? { status: /\d\.\d{1,3}\.\d{1,3}/.exec(f.status)?.[0] ?? f.status } : {}),
      ...(diagnostic ? { diagnostic } : {}), ...(remoteMta ? { remoteMta } : {}) };
  });
  const reportingMta = diagnosticOf(message['reporting-mta']);
  return { kind: 'dsn', recipients, ...(reportingMta ? { reportingMta } : {}), original: original(mail, raw) };
}

function feedbackReport(part: Attachment, mail: ParsedMail, raw: string): ParsedReport {
  const f = fieldBlock(part.content.toString('utf8'));
  const optional = (key: string, name: string) => (f[name] ? { [key]: name.startsWith('original-') ? f[name]!.replace(/^<|>$/g, '') : f[name] } : {});
  return {
    kind: 'arf', feedbackType: (f['feedback-type'] ?? 'other').toLowerCase(),
    ...optional('userAgent', 'user-agent'), ...optional('originalMailFrom', 'original-mail-from'), ...optional('originalRcptTo', 'original-rcpt-to'),
    ...optional('sourceIp', 'source-ip'), ...optional('arrivalDate', 'arrival-date'), ...optional('reportedDomain', 'reported-domain'),
    ...(mail.from?.value[0]?.address ? { reportingFrom: mail.from.value[0].address } : {}),
    original: original(mail, raw),
  };
}

/**
 * Plain-text bounces: the sender looks like a mailer daemon or the subject like a failure
 * notice, and the text quotes an SMTP reply (or qmail's "(#5.1.1)"). The recipient is the
 * address the text names before that reply, when there is one.
 */
function plainTextBounce(mail: ParsedMail, raw: string): ParsedReport | undefined {
  const from = mail.from?.value[0]?.address ?? '';
  const subject = mail.subject ?? '';
  const looksLikeBounce = /mailer-daemon|postmaster|mail delivery/i.test(`${from} ${mail.from?.text ?? ''}`) ||
    /undeliver|delivery (status|failure|failed|has failed)|failure notice|returned mail|could not be delivered|mail delivery failed/i.test(subject);
  if (!looksLikeBounce) return undefined;
  const text = mail.text ?? '';
  const reply = /\b([45]\d\d)(?:[- ]|:[ ]?)(?:([45]\.\d{1,3}\.\d{1,3})[ ]+)?([^\n]*(?:\n(?![ \t]*\n)[^\n]*){0,2})/.exec(text);
  const qmail = /\(#([45]\.\d{1,3}\.\d{1,3})\)/.exec(text);
  if (!reply && !qmail) return undefined;
  const before = text.slice(0, reply?.index ?? qmail!.index);
  const addresses = [...before.matchAll(/<?([^\s<>()"',;:]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?/g)].map((m) => m[1]!);
  const rcptTo = addresses.at(-1);
  const status = reply?.[2] ?? qmail?.[1];
  const diagnostic = reply ? `${reply[1]} ${reply[2] ? `${reply[2]} ` : ''}${reply[3]!.replace(/\s+/g, ' ').trim()}` : text.slice(Math.max(0, qmail!.index - 200), qmail!.index + qmail![0].length).replace(/\s+/g, ' ').trim();
  const failed = (status ?? reply?.[1] ?? '').startsWith('5');
  return {
    kind: 'dsn',
    recipients: [{ action: failed ? 'failed' : 'delayed', ...(rcptTo ? { rcptTo } : {}), ...(status ? { status } : {}), diagnostic }],
    original: original(mail, raw),
  };
}

export async function parseReport(message: Buffer): Promise<ParsedReport> {
  const mail = await simpleParser(message, { keepDeliveryStatus: true, skipHtmlToText: false, skipImageLinks: true, skipTextLinks: true });
  const raw = message.toString('latin1');
  const status = mail.attachments.find((a) => a.contentType.toLowerCase() === 'message/delivery-status' || a.contentType.toLowerCase() === 'message/global-delivery-status');
  if (status) return deliveryStatus(status, mail, raw);
  const feedback = mail.attachments.find((a) => a.contentType.toLowerCase() === 'message/feedback-report');
  if (feedback) return feedbackReport(feedback, mail, raw);
  const plain = plainTextBounce(mail, raw);
  if (plain) return plain;
  const autoSubmitted = mail.headers.get('auto-submitted');
  return { kind: 'other', why: autoSubmitted ? `an automatic reply (Auto-Submitted: ${String(autoSubmitted)})` : 'neither a delivery status notification nor a feedback report', original: original(mail, raw) };
}
