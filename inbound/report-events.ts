// A parsed report, matched to its transmission and recipient, as events and suppressions:
// `out_of_band` for each recipient a later bounce says failed (SparkPost's event), with the
// bounce class the deliverer would give the same reply, and a suppression of every address
// when the class is hard; `spam_complaint` for an abuse report, with a suppression of the
// recipient for mail not marked transactional. Pure.
//
// Matching: the transmission comes from the VERP return path the report was sent to (ours, on
// the envelope), else from the returned original's X-MT-Transmission field; the account
// (namespace) only from that field, and only when it names the same transmission. The
// recipient is the report's own recipient field, else the return path's hint, else the
// original's To.
import { randomUUID } from 'node:crypto';
import { classifyReply, isHardBounce, parseReply } from '../deliverer/bounce-class.ts';
import type { SuppressionEntry } from '../deliverer/suppression-list.ts';
import { matchesRecipientHint, type ReportAddress } from '../shared/mail/verp.ts';
import type { BouncedRecipient, OriginalFacts, ParsedReport } from './report-parser.ts';
import type { UnsubscribeEvent } from '../tracker/unsubscribe.ts';

export interface InboundEvent {
  type: 'out_of_band' | 'spam_complaint';
  event_id: string;
  timestamp: string;
  transmission_id: string;
  namespace: string;
  rcpt_to: string;
  message_id?: string;
  friendly_from?: string;
  sending_domain?: string;
  subject?: string;
  // out_of_band
  bounce_class?: number;
  error_code?: string;
  raw_reason?: string;
  reason?: string;
  reporting_mta?: string;
  // spam_complaint (SparkPost's names)
  fbtype?: string;
  report_by?: string;
  report_to?: string;
  user_str?: string;
}

/** What became of a report: the events and suppressions, and a word for the metrics and the log. */
export interface ReportOutcome {
  result: 'bounce' | 'complaint' | 'unsubscribe' | 'delayed' | 'ignored' | 'unmatched';
  detail: string;
  events: (InboundEvent | UnsubscribeEvent)[];
  suppressions: SuppressionEntry[];
}

/** Feedback types that are a recipient's complaint (RFC 5965 3.5); not-spam and auth-failure are not. */
const COMPLAINTS = new Set(['abuse', 'fraud', 'virus', 'other']);

interface Match { transmissionId: string; namespace: string; original: OriginalFacts }

function match(address: ReportAddress, original: OriginalFacts): Match | string {
  const fromReturnPath = address.kind === 'bounce' ? address.transmissionId : undefined;
  const transmissionId = fromReturnPath ?? original.transmissionId;
  if (!transmissionId) return 'no transmission: neither a return path of ours nor an X-MT-Transmission field in the returned original';
  if (!original.namespace) return `transmission ${transmissionId}: the report returned no X-MT-Transmission field to name its account`;
  if (original.transmissionId !== transmissionId) return `transmission ${transmissionId}: the returned original names transmission ${original.transmissionId}`;
  return { transmissionId, namespace: original.namespace, original };
}

function common(m: Match, rcptTo: string, now: Date) {
  const from = m.original.from;
  return {
    event_id: randomUUID(), timestamp: now.toISOString(), transmission_id: m.transmissionId, namespace: m.namespace, rcpt_to: rcptTo.toLowerCase(),
    ...(m.original.messageId ? { message_id: m.original.messageId } : {}),
    ...(from ? { friendly_from: from, sending_domain: from.slice(from.lastIndexOf('@') + 1).toLowerCase() } : {}),
    ...(m.original.subject ? { subject: m.original.subject } : {}),
  };
}

/** The reply a failed recipient's report quotes, classified as the deliverer classifies replies. */
function bounceOf(r: BouncedRecipient): { bounceClass: number; code: string; rawReason: string } {
  const quoted = r.diagnostic ? parseReply(r.diagnostic.replace(/^(\d{3})-/, '$1 ')) : undefined;
  const enhanced = quoted?.enhanced ?? r.status;
  const code = quoted?.code || (enhanced?.startsWith('4') ? 450 : 550);
  const rawReason = r.diagnostic ?? `${code} ${enhanced ?? ''}`.trim();
  return { bounceClass: classifyReply(code, enhanced, quoted?.text ?? rawReason), code: String(code), rawReason };
}

export function reportOutcome(report: ParsedReport, address: ReportAddress, envelopeTo: string, now = new Date()): ReportOutcome {
  const none = (result: ReportOutcome['result'], detail: string): ReportOutcome => ({ result, detail, events: [], suppressions: [] });
  if (report.kind === 'other') return none('ignored', report.why);
  // A delay notice changes nothing: the deliverer's own retries go on.
  if (report.kind === 'dsn' && !report.recipients.some((r) => r.action === 'failed')) {
    return none(report.recipients.some((r) => r.action === 'delayed') ? 'delayed' : 'ignored', `actions: ${report.recipients.map((r) => r.action).join(', ') || 'none'}`);
  }
  const m = match(address, report.original);
  if (typeof m === 'string') return none('unmatched', m);

  if (report.kind === 'arf') {
    if (!COMPLAINTS.has(report.feedbackType)) return none('ignored', `feedback type ${report.feedbackType} is not a complaint`);
    const rcptTo = report.originalRcptTo ?? m.original.to;
    if (!rcptTo) return none('unmatched', `transmission ${m.transmissionId}: the report names no recipient`);
    const event: InboundEvent = {
      type: 'spam_complaint', ...common(m, rcptTo, now), fbtype: report.feedbackType, report_to: envelopeTo.toLowerCase(),
      ...(report.reportingFrom ? { report_by: report.reportingFrom } : {}), ...(report.userAgent ? { user_str: report.userAgent } : {}),
    };
    return {
      result: 'complaint', detail: `${report.feedbackType} complaint by ${event.rcpt_to}`, events: [event],
      suppressions: [{ namespace: m.namespace, address: event.rcpt_to, reason: `spam complaint (${report.feedbackType})${report.reportingFrom ? ` reported by ${report.reportingFrom}` : ''}`,
        source: 'complaint', type: 'non_transactional', created: now.toISOString() }],
    };
  }

  const failed = report.recipients.filter((r) => r.action === 'failed');
  const hint = address.kind === 'bounce' ? address.recipientHint : undefined;
  const events: InboundEvent[] = [];
  const suppressions: SuppressionEntry[] = [];
  for (const r of failed) {
    const rcptTo = r.rcptTo ?? hint ?? m.original.to;
    if (!rcptTo) continue;
    // A return path written for one recipient takes reports about that recipient only: a forged
    // report cannot suppress another address of the account through it.
    if (hint && !matchesRecipientHint(rcptTo, hint)) continue;
    const { bounceClass, code, rawReason } = bounceOf(r);
    const event: InboundEvent = {
      type: 'out_of_band', ...common(m, rcptTo, now), bounce_class: bounceClass, error_code: code, raw_reason: rawReason,
      reason: rawReason.replace(/\s+/g, ' ').slice(0, 256), ...(report.reportingMta ? { reporting_mta: report.reportingMta } : {}),
    };
    events.push(event);
    if (isHardBounce(bounceClass)) {
      suppressions.push({ namespace: m.namespace, address: event.rcpt_to, reason: rawReason, bounce_class: bounceClass, source: 'bounce', created: now.toISOString() });
    }
  }
  if (!events.length) return none('unmatched', `transmission ${m.transmissionId}: the report names no recipient${hint ? ` the return path was written for (${hint})` : ''}`);
  return { result: 'bounce', detail: events.map((e) => `${e.rcpt_to} class ${e.bounce_class}`).join(', '), events, suppressions };
}
