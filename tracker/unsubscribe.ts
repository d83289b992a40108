// Unsubscribing through a message's List-Unsubscribe link (/u/<token>). A mailbox provider's
// one-click request (RFC 8058: POST with the body `List-Unsubscribe=One-Click`) unsubscribes at
// once: a `list_unsubscribe` event. A person who opens the link gets a page that asks first,
// and unsubscribes when they press its button: a `link_unsubscribe` event. A GET never
// unsubscribes anyone, so link scanners and previews that fetch every link change nothing.
// Either way the recipient is suppressed for the account's mail not marked transactional
// (receipts and password resets still arrive), as SparkPost does.
import { randomUUID } from 'node:crypto';
import type { SuppressionEntry } from '../deliverer/suppression-list.ts';
import type { TrackingClaims } from '../shared/tracking/tokens.ts';
import type { RecipientRequestEvent } from './track-events.ts';

export interface UnsubscribeEvent extends RecipientRequestEvent {
  type: 'list_unsubscribe' | 'link_unsubscribe';
}

/** What a POST to an unsubscribe link asks: RFC 8058's one-click, the page's button, or neither. */
export function unsubscribeRequest(contentType: string | undefined, body: string): 'one_click' | 'confirmed' | undefined {
  // RFC 8058 allows application/x-www-form-urlencoded and multipart/form-data; both carry the
  // key and value as written, so they are found the same way.
  const fields = /multipart\/form-data/i.test(contentType ?? '')
    ? [...body.matchAll(/name="([^"]+)"\r?\n\r?\n([^\r\n]*)/g)].map((m) => [m[1]!, m[2]!] as const)
    : [...new URLSearchParams(body)];
  if (fields.some(([k, v]) => k === 'List-Unsubscribe' && v === 'One-Click')) return 'one_click';
  if (fields.some(([k, v]) => k === 'unsubscribe' && v === 'confirm')) return 'confirmed';
  return undefined;
}

const REASONS = {
  one_click: 'unsubscribed with the mail client\'s unsubscribe button (RFC 8058 one-click)',
  confirmed: 'unsubscribed on the page of the message\'s unsubscribe link',
  mail: 'unsubscribed by mail to the message\'s List-Unsubscribe address',
};

/**
 * The event and suppression of an unsubscribe: `one_click` and `mail` come through the
 * List-Unsubscribe field (list_unsubscribe, as SparkPost names it), `confirmed` through the page.
 */
export function unsubscribeOutcome(claims: TrackingClaims, how: keyof typeof REASONS, request: { ip: string; userAgent: string }, now = new Date()):
  { event: UnsubscribeEvent; suppression: SuppressionEntry } {
  const type = how === 'confirmed' ? 'link_unsubscribe' : 'list_unsubscribe';
  return {
    event: {
      type, event_id: randomUUID(), timestamp: now.toISOString(), transmission_id: claims.transmissionId, namespace: claims.namespace,
      rcpt_to: claims.rcptTo, ip_address: request.ip, user_agent: request.userAgent, ...(claims.campaignId ? { campaign_id: claims.campaignId } : {}),
    },
    suppression: {
      namespace: claims.namespace, address: claims.rcptTo.toLowerCase(), source: 'unsubscribe', type: 'non_transactional', created: now.toISOString(),
      reason: REASONS[how],
    },
  };
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:32em;margin:4em auto;padding:0 1em;color:#1d232a}button{font:inherit;padding:.4em 1.2em}';

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`
    + `<meta name="robots" content="noindex"><title>${title}</title><style>${STYLE}</style></head><body>${body}</body></html>\n`;
}

/** The page a person sees at the link: the address, and a button that unsubscribes it. */
export function confirmPage(claims: TrackingClaims): string {
  return page('Unsubscribe', `<h1>Unsubscribe</h1><p>Stop sending mail like this to <strong id="address">${escape(claims.rcptTo)}</strong>?</p>`
    + '<form method="post"><input type="hidden" name="unsubscribe" value="confirm"><button type="submit" id="unsubscribe">Unsubscribe</button></form>'
    + '<p><small>Receipts and other messages you asked for will still arrive.</small></p>');
}

export function donePage(claims: TrackingClaims): string {
  return page('Unsubscribed', `<h1 id="done">You are unsubscribed</h1><p><strong>${escape(claims.rcptTo)}</strong> will get no more mail like this.</p>`);
}

/** Headers of both pages: no script at all, no framing, no caching, no referrer. */
export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};
