// The operator's Prometheus metrics, on the registry of its role.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createOperatorMetrics(registry: Registry) {
  const registers = [registry];
  /** Set by the operator: one entry per condition of every resource, counted at scrape time. */
  const resourceConditions = { list: (): { kind: string; condition: string; status: string }[] => [] };
  return {
    resourceConditions,
    reconciles: new Counter({ name: 'mtrelay_operator_reconciles_total', help: 'Reconciles by kind and result (success, error, conflict)', labelNames: ['kind', 'result'], registers }),
    reconcileSeconds: new Histogram({
      name: 'mtrelay_operator_reconcile_seconds', help: 'Time one reconcile took, by kind', labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers,
    }),
    queueDepth: new Gauge({ name: 'mtrelay_operator_queue_depth', help: 'Keys waiting in the work queue, by kind', labelNames: ['kind'], registers }),
    resources: new Gauge({
      name: 'mtrelay_operator_resources', help: 'Resources by kind, condition type and status', labelNames: ['kind', 'condition', 'status'], registers,
      collect() {
        this.reset();
        for (const labels of resourceConditions.list()) this.inc(labels);
      },
    }),
    leader: new Gauge({ name: 'mtrelay_operator_leader', help: '1 while this replica holds the leader Lease', registers }),
    leaseFailures: new Counter({ name: 'mtrelay_operator_lease_failures_total', help: 'Attempts to read, take or renew the leader Lease that failed (not lost races to another replica)', registers }),
    configWriteFailures: new Counter({ name: 'mtrelay_operator_config_write_failures_total', help: 'Config Secret writes that failed (retried with backoff)', registers }),
    configWrites: new Counter({ name: 'mtrelay_operator_config_writes_total', help: 'Config Secret sets written because their content changed, by view (relay, deliverer)', labelNames: ['view'], registers }),
    configBytes: new Gauge({ name: 'mtrelay_operator_config_bytes', help: 'Compressed size of the config in force, by view', labelNames: ['view'], registers }),
    configShards: new Gauge({ name: 'mtrelay_operator_config_shards', help: 'Secrets the config in force is split across, by view', labelNames: ['view'], registers }),
    informerRestarts: new Counter({ name: 'mtrelay_operator_informer_restarts_total', help: 'Informers restarted (watch failure, watchdog, periodic relist), by kind', labelNames: ['kind'], registers }),
  };
}

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;
