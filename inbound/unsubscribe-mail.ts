// Unsubscribing by mail: List-Unsubscribe's mailto sends to unsubscribe@<bounce domain> with the
// recipient's signed token as the subject (mail clients copy the URI's subject; some add "Re:"
// or the like, so the token is looked for among the subject's words). A token that verifies
// unsubscribes its recipient exactly as the one-click link does; anything else changes nothing
// and is answered 250 all the same (a retry would not read better).
import libmime from 'libmime';
import { headerBlockEnd, splitRawFields } from '../shared/mail/headers.ts';
import { verifyToken, type TrackingKeyRing } from '../shared/tracking/tokens.ts';
import { unsubscribeOutcome } from '../tracker/unsubscribe.ts';
import type { ReportOutcome } from './report-events.ts';

const TOKEN = /[A-Za-z0-9_-]{1,16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g;

function subjectOf(message: Buffer): string {
  const end = headerBlockEnd(message);
  const field = splitRawFields(message.toString('latin1', 0, end === -1 ? message.length : end)).find((f) => f.name === 'subject');
  if (!field) return '';
  const value = field.raw.slice(field.raw.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/** What a mail to the unsubscribe address does; `ip` is the sending server's address. */
export function mailUnsubscribeOutcome(message: Buffer, ring: TrackingKeyRing, ip: string, now = new Date()): ReportOutcome {
  const subject = subjectOf(message);
  for (const candidate of subject.match(TOKEN) ?? []) {
    const verified = verifyToken(ring, candidate, now.getTime());
    if (!verified.ok || verified.claims.kind !== 'unsubscribe') continue;
    const { event, suppression } = unsubscribeOutcome(verified.claims, 'mail', { ip, userAgent: '' }, now);
    return { result: 'unsubscribe', detail: `${event.rcpt_to} of ${event.namespace} unsubscribed by mail`, events: [event], suppressions: [suppression] };
  }
  return { result: 'unmatched', detail: 'no unsubscribe token of ours in the subject', events: [], suppressions: [] };
}
