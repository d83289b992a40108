// The dispatcher's Prometheus metrics, on the registry of the role that dispatches (dispatcher or standalone).
import { Counter, Gauge, type Registry } from 'prom-client';

export function createDispatcherMetrics(registry: Registry) {
  const registers = [registry];
  // `account`, not `namespace`: Prometheus gives every scraped series the pod's namespace.
  const labelNames = ['account', 'webhook'];
  return {
    events: new Counter({ name: 'mtrelay_dispatcher_events_total', labelNames: [...labelNames, 'result'], registers,
      help: 'Events per webhook by result: delivered (in a batch the receiver took) or dropped (its batch failed past the give-up time, or the backlog was full)' }),
    attempts: new Counter({ name: 'mtrelay_dispatcher_batch_attempts_total', labelNames: [...labelNames, 'result'], registers,
      help: 'Batch posts per webhook by result: ok (2xx) or failed (any other answer, no answer, or a connection error)' }),
    drops: new Counter({ name: 'mtrelay_dispatcher_drops_total', labelNames, registers,
      help: 'Times events were dropped for a webhook (a batch that kept failing, or a full backlog); each drop is logged with its reason and shown in the Webhook\'s status' }),
    backlog: new Gauge({ name: 'mtrelay_dispatcher_backlog_events', labelNames, registers, help: 'Events waiting for a webhook, the batch being posted included' }),
    failing: new Gauge({ name: 'mtrelay_dispatcher_webhook_failing', labelNames, registers, help: '1 while a webhook\'s last post failed, else 0' }),
  };
}

export type DispatcherMetrics = ReturnType<typeof createDispatcherMetrics>;
