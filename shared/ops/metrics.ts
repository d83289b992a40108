// A Prometheus registry per process role, with the default process metrics, so tests can
// run several components in one process without their metrics colliding.
import { Registry, collectDefaultMetrics } from 'prom-client';

export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mtrelay_' });
  return registry;
}
