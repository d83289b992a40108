// One-click unsubscribe, which Gmail and Yahoo require of bulk senders since 2024: every copy of
// a message not marked transactional gets its recipient's own
//   List-Unsubscribe: <https://<tracking host>/u/<signed token>>,
//     <mailto:unsubscribe@<bounce domain>?subject=<signed token>>   (RFC 2369; mailto with a bounce domain)
//   List-Unsubscribe-Post: List-Unsubscribe=One-Click                (RFC 8058)
// both covered by the DKIM signature (dkim.ts signs them when present). The link goes through
// the tracker, the mail to the inbound role; either suppresses the recipient for the account's
// non-transactional mail. A
// message that brings its own List-Unsubscribe keeps it (the sender runs its own list), and
// archive copies get none (their mailbox is the sender's own).
import type { Submission } from '../shared/submission-record.ts';
import { headerBlockEnd, splitRawFields } from '../shared/mail/headers.ts';
import { unsubscribeAddress } from '../shared/mail/verp.ts';
import { recipientSigner, type TrackingKeyRing } from '../shared/tracking/tokens.ts';
import type { Copy } from './fan-out.ts';

/** Whether the sender's message already has a List-Unsubscribe field. */
export function hasOwnListUnsubscribe(raw: Buffer): boolean {
  const end = headerBlockEnd(raw);
  return splitRawFields(raw.toString('latin1', 0, end === -1 ? raw.length : end)).some((f) => f.name === 'list-unsubscribe');
}

/** The two fields for one recipient's unsubscribe token: the HTTPS link, and the mailto when there is a bounce domain (on a line of its own). */
export function listUnsubscribeFields(baseUrl: string, token: string, bounceDomain?: string): string {
  const mailto = bounceDomain ? `,\r\n <mailto:${unsubscribeAddress(bounceDomain)}?subject=${token}>` : '';
  return `List-Unsubscribe: <${baseUrl}/u/${token}>${mailto}\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n`;
}

/**
 * Adds the fields to each copy that should have them; returns how many got them. `baseUrl` is
 * the tracking host's (as for tracked links, e.g. https://click.example.com); `bounceDomain` the
 * inbound role's, for the mailto.
 */
export function addListUnsubscribe(raw: Buffer, copies: Copy[], submission: Submission, links: { baseUrl: string; bounceDomain?: string | undefined },
  ring: TrackingKeyRing, lifetimeSeconds: number, now = Date.now()): number {
  if (submission.attributes.transactional === true || hasOwnListUnsubscribe(raw)) return 0;
  let added = 0;
  for (const copy of copies) {
    if (copy.rcptType === 'archive') continue;
    const token = recipientSigner(ring, {
      transmissionId: submission.transmissionId, rcptTo: copy.rcptTo, namespace: submission.namespace, expiresAt: Math.floor(now / 1000) + lifetimeSeconds,
      ...(submission.attributes.campaignId ? { campaignId: submission.attributes.campaignId } : {}),
    })('unsubscribe');
    copy.header = Buffer.concat([copy.header, Buffer.from(listUnsubscribeFields(links.baseUrl, token, links.bounceDomain), 'latin1')]);
    added++;
  }
  return added;
}
