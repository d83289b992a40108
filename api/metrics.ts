// The API role's Prometheus metrics.
import { Counter, type Registry } from 'prom-client';

export function createApiMetrics(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'mtrelay_api_requests_total', labelNames: ['route', 'method', 'status'], registers,
      help: 'API requests by route (suppressions, events, other), method and status (401 and 403: keys without the right permission; 503: storage unavailable)',
    }),
  };
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>;
