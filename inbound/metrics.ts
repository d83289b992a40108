// The inbound role's Prometheus metrics.
import { Counter, type Registry } from 'prom-client';

export function createInboundMetrics(registry: Registry) {
  const registers = [registry];
  return {
    connections: new Counter({ name: 'mtrelay_inbound_connections_total', registers, help: 'SMTP connections to the inbound listener' }),
    refused: new Counter({
      name: 'mtrelay_inbound_refused_total', labelNames: ['reason'], registers,
      help: 'Recipients and reports refused: not_ours (not a return path or feedback address of a bounce domain), too_big',
    }),
    reports: new Counter({
      name: 'mtrelay_inbound_reports_total', labelNames: ['kind', 'result'], registers,
      help: 'Reports taken, per recipient address, by kind (dsn, arf, other) and result (bounce, complaint, unsubscribe, delayed, ignored, unmatched: no transmission or account could be found)',
    }),
    events: new Counter({ name: 'mtrelay_inbound_events_total', labelNames: ['type'], registers, help: 'Events stored, by type (out_of_band, spam_complaint, list_unsubscribe)' }),
    complaints: new Counter({
      name: 'mtrelay_inbound_complaints_total', labelNames: ['account', 'sending_domain'], registers,
      help: 'Spam complaints stored, by account and the sending domain of the complained-of message (over this role\'s first 1000 domains, "other")',
    }),
    suppressions: new Counter({ name: 'mtrelay_inbound_suppressions_total', registers, help: 'Suppression entries stored (hard out-of-band bounces, complaints)' }),
  };
}

export type InboundMetrics = ReturnType<typeof createInboundMetrics>;
