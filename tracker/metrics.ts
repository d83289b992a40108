// The tracker's Prometheus metrics.
import { Counter, type Registry } from 'prom-client';

export function createTrackerMetrics(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'mtrelay_tracker_requests_total', labelNames: ['route', 'result'], registers,
      help: 'Tracker requests by route (open, click, unsubscribe, other) and result (ok; or why it got 404: malformed, unknown_key, bad_signature or expired token, wrong_kind (a token of another kind), not_found (another path or method); bad_request (an unsubscribe POST that asks for nothing or is too large); unavailable (an unsubscribe that could not be stored: 503))',
    }),
    events: new Counter({ name: 'mtrelay_tracker_events_total', labelNames: ['type'], registers, help: 'Engagement events handed to Kafka and acknowledged, by type (open, initial_open, click)' }),
    unsubscribes: new Counter({ name: 'mtrelay_tracker_unsubscribes_total', labelNames: ['type'], registers, help: 'Recipients unsubscribed through List-Unsubscribe links and stored, by type (list_unsubscribe: one-click; link_unsubscribe: the page)' }),
    eventsLost: new Counter({ name: 'mtrelay_tracker_events_lost_total', registers, help: 'Engagement events Kafka did not take (the request was answered; the event is logged and not retried)' }),
  };
}

export type TrackerMetrics = ReturnType<typeof createTrackerMetrics>;
