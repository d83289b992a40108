// A message trace: one transmission's events as a timeline per recipient (injection, delays,
// delivery or bounce, opens, clicks, later bounces and complaints), each step with a line a
// person can read, and where the recipient stands now. Served as JSON by the API
// (GET /api/v1/events/trace/<id>) and shown by `mtrelay events trace` and the trace page.
import type { IndexedEvent } from './event-rows.ts';

export interface TraceStep {
  timestamp: string;
  type: string;
  detail: string;
  event_id: string;
}

export interface RecipientTrace {
  rcpt_to: string;
  /** Where the recipient stands after the last step that decides it. */
  status: 'queued' | 'delayed' | 'delivered' | 'bounced' | 'rejected' | 'complained' | 'unsubscribed';
  steps: TraceStep[];
}

export interface Trace {
  transmission_id: string;
  subject?: string;
  friendly_from?: string;
  recipients: RecipientTrace[];
  /** True when the transmission has more events than a trace shows. */
  truncated: boolean;
}

const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

function detail(e: IndexedEvent): string {
  const reason = str(e.raw_reason) || str(e.reason);
  switch (e.type) {
    case 'injection': return `accepted from ${str(e.friendly_from) || 'the sender'} (${str(e.msg_size)} bytes)`;
    case 'delivery': return `delivered to ${str(e.mx_ip) || 'the mailbox provider'}${e.tls === true ? ' over TLS' : ''}${Number(e.num_retries) ? ` after ${str(e.num_retries)} retries` : ''}`;
    case 'delay': return `delayed, will retry: ${reason}`;
    case 'bounce': return `bounced (class ${str(e.bounce_class)}): ${reason}`;
    case 'policy_rejection': return `not sent (class ${str(e.bounce_class)}): ${reason}`;
    case 'out_of_band': return `bounced later${str(e.reporting_mta) ? ` by ${str(e.reporting_mta)}` : ''} (class ${str(e.bounce_class)}): ${reason}`;
    case 'spam_complaint': return `marked as spam${str(e.report_by) ? `, reported by ${str(e.report_by)}` : ''}${str(e.fbtype) ? ` (${str(e.fbtype)})` : ''}`;
    case 'open': case 'initial_open': return `opened${str(e.user_agent) ? ` in ${str(e.user_agent)}` : ''}`;
    case 'click': return `clicked ${str(e.target_link_url)}`;
    case 'list_unsubscribe': return 'unsubscribed with the mail client\'s unsubscribe button (one-click)';
    case 'link_unsubscribe': return 'unsubscribed on the page of the unsubscribe link';
    default: return e.type;
  }
}

const STATUS: Record<string, RecipientTrace['status']> = {
  injection: 'queued', delay: 'delayed', delivery: 'delivered', bounce: 'bounced', policy_rejection: 'rejected', out_of_band: 'bounced', spam_complaint: 'complained',
  list_unsubscribe: 'unsubscribed', link_unsubscribe: 'unsubscribed',
};

/** Where a step falls in a message's life, for events of the same millisecond (the deliverer writes a first attempt's injection and outcome at once). */
const LIFE_ORDER: Record<string, number> = {
  injection: 0, delay: 1, delivery: 2, bounce: 2, policy_rejection: 2, initial_open: 3, open: 3, click: 4, out_of_band: 5, spam_complaint: 5, list_unsubscribe: 5, link_unsubscribe: 5,
};

/** The trace of a transmission's events (any order); `truncated` when the search stopped early. */
export function buildTrace(transmissionId: string, events: IndexedEvent[], truncated = false): Trace {
  const byRecipient = new Map<string, IndexedEvent[]>();
  for (const e of events) {
    const rcpt = str(e.rcpt_to).toLowerCase();
    byRecipient.set(rcpt, [...(byRecipient.get(rcpt) ?? []), e]);
  }
  const recipients = [...byRecipient].sort(([a], [b]) => a.localeCompare(b)).map(([rcpt_to, list]): RecipientTrace => {
    const sorted = list.sort((a, b) => a.timestamp.localeCompare(b.timestamp) || (LIFE_ORDER[a.type] ?? 9) - (LIFE_ORDER[b.type] ?? 9) || a.event_id.localeCompare(b.event_id));
    const status = sorted.reduce<RecipientTrace['status']>((s, e) => STATUS[e.type] ?? s, 'queued');
    return { rcpt_to, status, steps: sorted.map((e) => ({ timestamp: e.timestamp, type: e.type, detail: detail(e), event_id: e.event_id })) };
  });
  const first = events.find((e) => e.type === 'injection') ?? events[0];
  return {
    transmission_id: transmissionId,
    ...(first && str(first.subject) ? { subject: str(first.subject) } : {}),
    ...(first && str(first.friendly_from) ? { friendly_from: str(first.friendly_from) } : {}),
    recipients, truncated,
  };
}

/** A trace as lines of text (the CLI's output). */
export function traceText(trace: Trace): string {
  const head = [`transmission ${trace.transmission_id}${trace.subject ? `: "${trace.subject}"` : ''}${trace.friendly_from ? ` from ${trace.friendly_from}` : ''}`];
  if (!trace.recipients.length) head.push('  no events (the id is unknown to this account, or its events are past the retention)');
  for (const r of trace.recipients) {
    head.push('', `${r.rcpt_to} — ${r.status}`);
    for (const s of r.steps) head.push(`  ${s.timestamp}  ${s.type.padEnd(16)} ${s.detail}`);
  }
  if (trace.truncated) head.push('', '(more events than a trace shows; search them with GET /api/v1/events/message?transmissions=…)');
  return `${head.join('\n')}\n`;
}
