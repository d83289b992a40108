// Wires the operator: informers on every replica (warm caches), one work queue per
// controller fed from them by what each controller watches, the queues run only on the
// leader, and a clean hand-over on shutdown.
import type { Logger } from 'pino';
import { KubeClient, loadKubeConfig } from '../shared/kube/client.ts';
import { Informer } from '../shared/kube/informer.ts';
import { Role } from '../shared/ops/role.ts';
import { ApiKeyController } from './api-key-controller.ts';
import { ConfigController, type ConfigTargets } from './config-controller.ts';
import type { Controller, WatchedKind, WatchedObjects } from './controller.ts';
import { DnsChecker } from './dns-check.ts';
import { EventRecorder } from '../shared/kube/events.ts';
import { LeaderElector } from './leader-election.ts';
import { createOperatorMetrics, type OperatorMetrics } from './metrics.ts';
import { SECRET_LABEL, paths } from './resources.ts';
import { SendingDomainController, type DomainPolicy } from './sending-domain-controller.ts';
import { WebhookController } from './webhook-controller.ts';
import { WorkQueue } from './work-queue.ts';

export interface OperatorConfig {
  kubeconfig?: string;
  identity: string;
  targets: ConfigTargets;
  leaseNamespace: string;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  policy: DomainPolicy;
  dnsServers: string[];
  relistMs: number;
  metricsHost: string;
  metricsPort: number;
}

export interface RunningOperator {
  role: Role;
  elector: LeaderElector;
  /** Stops the controllers, releases leadership, stops the informers. */
  shutdown(): Promise<void>;
}

type Informers = { [K in WatchedKind]: Informer<WatchedObjects[K]> };

/** A controller with its queue; adds reach the queue only while this replica leads. */
class Running {
  readonly controller: Controller;
  readonly queue: WorkQueue;
  leading = false;

  constructor(controller: Controller, logger: Logger, metrics: OperatorMetrics) {
    this.controller = controller;
    this.queue = new WorkQueue({ kind: controller.kind, reconcile: (key) => controller.reconcile(key), logger, metrics, ...(controller.workers ? { workers: controller.workers } : {}) });
  }

  add(key: string): void {
    if (!this.leading) return;
    const delay = this.controller.batchDelayMs?.() ?? 0;
    if (delay > 0) this.queue.addAfter(key, delay);
    else this.queue.add(key);
  }

  lead(): void {
    this.leading = true;
    this.queue.start();
    for (const key of this.controller.keys()) this.queue.add(key);
  }
}

export async function startOperator(config: OperatorConfig, logger: Logger, onLostLeadership: () => void): Promise<RunningOperator> {
  const role = await Role.start({ name: 'operator', logger, metricsHost: config.metricsHost, metricsPort: config.metricsPort });
  const metrics = createOperatorMetrics(role.registry);
  const client = new KubeClient(loadKubeConfig(config.kubeconfig));
  const events = new EventRecorder(client, logger, 'mtrelay-operator', config.identity);
  const running: Running[] = [];

  // An event on an object goes to every controller watching its kind, as the keys it maps to.
  const dispatch = <K extends WatchedKind>(kind: K, object: WatchedObjects[K]) => {
    for (const r of running) for (const key of r.controller.watches[kind]?.(object) ?? []) r.add(key);
  };
  const listed = (kind: WatchedKind) => {
    for (const r of running) if (r.controller.resyncAfterList && r.controller.watches[kind]) for (const key of r.controller.keys()) r.add(key);
  };
  const informer = <K extends WatchedKind>(kind: K, path: string, labelSelector?: string) => new Informer<WatchedObjects[K]>({
    client, path, labelSelector, logger, relistMs: config.relistMs,
    onEvent: (_event, object) => dispatch(kind, object), onSynced: () => listed(kind), onRestart: () => metrics.informerRestarts.inc({ kind }),
  });
  const informers: Informers = {
    SendingDomain: informer('SendingDomain', paths.sendingDomains()),
    ApiKey: informer('ApiKey', paths.apiKeys()),
    Webhook: informer('Webhook', paths.webhooks()),
    AccountSettings: informer('AccountSettings', paths.accountSettings()),
    // Only Secrets labelled for mtrelay: the cache stays small, and unlabelled Secrets stay out of reach.
    Secret: informer('Secret', paths.secrets(), SECRET_LABEL),
  };
  const { SendingDomain: domains, ApiKey: apiKeys, Webhook: webhooks, AccountSettings: accountSettings, Secret: secrets } = informers;

  const configController = new ConfigController({
    client, domains, apiKeys, webhooks, accountSettings, secrets, targets: config.targets, requireDnsVerification: config.policy.requireDnsVerification, events, metrics, logger,
  });
  const controllers: Controller[] = [
    new SendingDomainController({ client, domains, secrets, dns: new DnsChecker(config.dnsServers), events, policy: config.policy, logger }),
    new ApiKeyController({ client, apiKeys, secrets, events, logger }),
    new WebhookController({ client, webhooks, secrets, events }),
    configController,
  ];
  running.push(...controllers.map((c) => new Running(c, logger, metrics)));

  const all = Object.values(informers);
  await Promise.all(all.map((i) => i.start()));
  logger.info({ sendingDomains: domains.list().length, apiKeys: apiKeys.list().length, secrets: secrets.list().length }, 'caches synced');
  role.readiness(() => (all.every((i) => i.synced) ? undefined : 'caches not synced'));
  metrics.resourceConditions.list = () => (['SendingDomain', 'ApiKey', 'Webhook'] as const).flatMap((kind) =>
    informers[kind].list().flatMap((o) => (o.status?.conditions ?? []).map((c) => ({ kind, condition: c.type, status: c.status }))));

  const elector = new LeaderElector({
    client, namespace: config.leaseNamespace, name: config.leaseName, identity: config.identity, logger,
    leaseDurationMs: config.leaseDurationMs, renewDeadlineMs: config.renewDeadlineMs, retryPeriodMs: config.retryPeriodMs,
    onStartedLeading: () => {
      if (role.draining) return;
      metrics.leader.set(1);
      for (const r of running) r.lead();
    },
    onStoppedLeading: () => {
      // As controller-runtime: a replica that lost the Lease stops at once and restarts clean.
      for (const r of running) r.leading = false;
      metrics.leader.set(0);
      onLostLeadership();
    },
    onFailure: () => metrics.leaseFailures.inc(),
  });
  elector.start();
  // A replica that cannot even take part in the election, or a leader whose writes fail, is not ready, and says why.
  role.readiness(() => (elector.failure ? `cannot take or renew the leader Lease ${config.leaseNamespace}/${config.leaseName}: ${elector.failure}` : undefined));
  role.readiness(() => (elector.isLeader && configController.writeFailure ? `config Secrets not written: ${configController.writeFailure}` : undefined));

  role.onStop('controllers (reconciles in progress finish)', async () => {
    for (const r of running) r.leading = false;
    await Promise.all(running.map((r) => r.queue.stop()));
  });
  role.onStop('leader Lease (released for a standby)', async () => {
    await elector.stop();
    metrics.leader.set(0);
  });
  role.onStop('informers', () => Promise.all(all.map((i) => i.stop())).then(() => undefined));
  role.started({ identity: config.identity, configNamespace: config.targets.namespace }, 'operator running');
  return { role, elector, shutdown: () => role.shutdown() };
}
