// The API role's Prometheus metrics.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createApiMetrics(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'mtrelay_api_requests_total', labelNames: ['route', 'method', 'status'], registers,
      help: 'API requests by route (suppressions, events, trace, other), method and status (401 and 403: keys without the right permission; 503: storage unavailable)',
    }),
  };
}

/** Metrics of the cluster's events store and its consumer (not in standalone, whose store is in the same process). */
export function createEventsStoreMetrics(registry: Registry) {
  const registers = [registry];
  return {
    eventsStored: new Counter({
      name: 'mtrelay_api_events_stored_total', registers,
      help: 'Events the consumer of mtrelay.events added to the events database (records read again after a rebalance are not counted twice)',
    }),
    storeFailures: new Counter({
      name: 'mtrelay_api_events_store_failures_total', registers,
      help: 'Batches of events the events database refused or did not answer; each is retried and nothing is committed meanwhile',
    }),
    storeUp: new Gauge({
      name: 'mtrelay_api_events_store_up', registers,
      help: '1 once the events database answered at start and after each batch stored; 0 while it fails (events wait in Kafka)',
    }),
    storeSeconds: new Histogram({
      name: 'mtrelay_api_events_store_seconds', registers, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      help: 'Time to insert one batch of events into the events database',
    }),
  };
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>;
export type EventsStoreMetrics = ReturnType<typeof createEventsStoreMetrics>;
