// The chart installed on a one-node cluster whose pods run, for the cluster test and
// `npm run bench:cluster`: the image built from the Dockerfile and imported into the node
// (no registry here), a Kafka broker, the API server and (for the test) the events database on the pods' bridge, then
// `helm install` with the relay's Service as a NodePort on loopback (standing in for the
// LoadBalancer) and every domain routed to a mailbox on the bridge.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { KafkaBroker, repoRoot } from '../kafka/broker.ts';
import { KubeApiServer } from '../k8s/api-server.ts';
import { BRIDGE_ADDRESS, KubeNode, createBridge } from '../k8s/node.ts';
import { buildah, buildImage } from '../image/containers.ts';
import { PostgresServer } from '../helpers/postgres.ts';
import { createTestCa } from '../helpers/tls.ts';
import { chartDir, helm } from './chart.ts';

export const IMAGE = 'localhost/mtrelay:cluster-test';
export const RELEASE_NS = 'mtrelay-system';
export const RELAY_HOSTNAME = 'smtp.test';
export const BOUNCE_DOMAIN = 'bounces.smtp.test';

// kubectl's JSON, read loosely: callers name the fields they need.
export type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface PodTimes {
  name: string;
  component: string;
  ready: boolean;
  /** Pod created → Ready: scheduling, sandbox, image, container start and the readiness probe. */
  createdToReady?: number;
  /** Container started → Ready: the role's own start-up as its readiness probe sees it. */
  startedToReady?: number;
}

export class ClusterRelease {
  readonly dir: string;
  readonly timings: Record<string, number> = {};
  api!: KubeApiServer;
  node!: KubeNode;
  broker!: KafkaBroker;
  /** The events database, when startEventsDatabase() made one. */
  postgres?: PostgresServer;
  /** The CA that issued the relay's certificate (for the name smtp.test and 127.0.0.1). */
  caCert = '';
  #stopped: Promise<void> | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Builds and exports the image, starts broker, API server and node, imports the image, and makes the relay's TLS Secret. */
  async prepare(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    let since = Date.now();
    buildImage(IMAGE);
    const archive = path.join(this.dir, 'mtrelay.tar');
    buildah(['push', '--quiet', IMAGE, `docker-archive:${archive}:${IMAGE}`]);
    this.timings.image = (Date.now() - since) / 1000;

    createBridge();
    this.broker = new KafkaBroker({ dir: path.join(this.dir, 'kafka'), host: BRIDGE_ADDRESS });
    since = Date.now();
    this.api = new KubeApiServer({ dir: path.join(this.dir, 'api-server'), address: BRIDGE_ADDRESS, applyCrds: false });
    await Promise.all([this.broker.start(), this.api.start()]);
    this.node = new KubeNode(path.join(this.dir, 'node'), this.api);
    await this.node.start();
    this.timings.cluster = (Date.now() - since) / 1000;
    since = Date.now();
    this.node.importImage(archive);
    rmSync(archive);
    this.timings.imageImport = (Date.now() - since) / 1000;

    mkdirSync(path.join(this.dir, 'ca'));
    const ca = createTestCa(path.join(this.dir, 'ca'));
    this.caCert = ca.caCert;
    const relayCert = ca.issue('relay', [RELAY_HOSTNAME, '127.0.0.1']);
    this.kubectl(['create', 'namespace', RELEASE_NS]);
    this.kubectl(['create', 'secret', 'tls', 'relay-tls', '-n', RELEASE_NS, '--cert', relayCert.cert, '--key', relayCert.key]);
  }

  /**
   * A PostgreSQL server on the bridge as the events database, and the Secret the chart takes
   * (events-db, its URI under `url`); install() then points the API pods at it.
   */
  async startEventsDatabase(): Promise<void> {
    this.postgres = new PostgresServer({ host: BRIDGE_ADDRESS });
    await this.postgres.start();
    this.kubectl(['create', 'secret', 'generic', 'events-db', '-n', RELEASE_NS, `--from-literal=url=${this.postgres.url}`]);
  }

  /** `helm install --wait`, every domain routed to `sinkPort` on the bridge; `set` adds or overrides values. */
  install(sinkPort: number, set: string[] = []): void {
    const since = Date.now();
    this.helm(['install', '--wait', '--timeout', '8m',
      '--set', `hostname=${RELAY_HOSTNAME}`, '--set', `image.repository=${IMAGE.split(':')[0]}`, '--set', `image.tag=${IMAGE.split(':')[1]}`, '--set', 'image.pullPolicy=Never',
      '--set', `kafka.bootstrapServers=${this.broker.bootstrap}`, '--set', 'kafka.partitions=2', '--set', 'kafka.replicationFactor=1',
      '--set', 'relay.tls.secretName=relay-tls', '--set', 'relay.service.type=NodePort', '--set', 'relay.preStopSleepSeconds=3',
      '--set', 'operator.replicas=1', '--set', 'operator.requireDnsVerification=false',
      '--set', `deliverer.routes={*=${BRIDGE_ADDRESS}:${sinkPort}}`, '--set', `deliverer.allowDestinations={${BRIDGE_ADDRESS}/32}`,
      '--set', 'tracker.enabled=false', '--set', 'dispatcher.enabled=false',
      // The bounce domain's MX, on a NodePort like the relay's.
      '--set', `deliverer.bounceDomain=${BOUNCE_DOMAIN}`, '--set', 'inbound.service.type=NodePort', '--set', 'inbound.autoscaling.enabled=false', '--set', 'inbound.replicas=1',
      '--set', 'api.autoscaling.enabled=false', '--set', 'api.replicas=1',
      ...(this.postgres ? ['--set', 'api.events.database.secretName=events-db'] : []),
      ...set.flatMap((s) => ['--set', s]),
    ]);
    this.timings.helmInstall = (Date.now() - since) / 1000;
  }

  /** helm install/upgrade of the release `mtrelay` from the repository's chart: `verb` first, then flags. */
  helm([verb, ...flags]: string[]): string {
    return helm([verb!, 'mtrelay', chartDir, '--namespace', RELEASE_NS, '--kubeconfig', this.api.kubeconfig, ...flags]);
  }

  kubectl(args: string[], input?: string): string {
    return this.api.kubectl(args, input);
  }

  json(args: string[]): Loose {
    return JSON.parse(this.kubectl([...args, '-o', 'json'])) as Loose;
  }

  /** A Service's node port for a named port (the relay's submission, smtps, …; the inbound role's smtp), on 127.0.0.1. */
  nodePort(name = 'submission', service = 'mtrelay-relay'): number {
    const found = this.json(['get', 'service', service, '-n', RELEASE_NS]);
    return (found.spec.ports as { name: string; nodePort: number }[]).find((p) => p.name === name)!.nodePort;
  }

  /** The release's pods, with how long each took to become Ready (seconds; the API's timestamps have second resolution). */
  pods(component?: string): PodTimes[] {
    const selector = component ? ['-l', `app.kubernetes.io/component=${component}`] : [];
    return (this.json(['get', 'pods', '-n', RELEASE_NS, ...selector]).items as Loose[]).map((p) => {
      const ready = (p.status.conditions ?? []).find((c: { type: string }) => c.type === 'Ready');
      const isReady = ready?.status === 'True' && !p.metadata.deletionTimestamp;
      const readyAt = isReady ? Date.parse(ready.lastTransitionTime) : undefined;
      const startedAt = p.status.containerStatuses?.[0]?.state?.running?.startedAt as string | undefined;
      return {
        name: p.metadata.name as string, component: p.metadata.labels['app.kubernetes.io/component'] as string, ready: isReady,
        ...(readyAt ? { createdToReady: (readyAt - Date.parse(p.metadata.creationTimestamp)) / 1000 } : {}),
        ...(readyAt && startedAt ? { startedToReady: (readyAt - Date.parse(startedAt)) / 1000 } : {}),
      };
    });
  }

  /** The host's process id of a pod's first container (for CPU and memory from /proc). */
  containerPid(pod: string): number {
    const id = this.node.crictl(['ps', '--quiet', '--pod', this.node.crictl(['pods', '--quiet', '--name', `^${pod}$`]).trim()]).trim().split('\n')[0]!;
    return (JSON.parse(this.node.crictl(['inspect', id])) as { info: { pid: number } }).info.pid;
  }

  /** Uninstalls the release and stops the cluster, once. */
  stop(log: (line: string) => void = () => undefined): Promise<void> {
    this.#stopped ??= (async () => {
      try {
        if (this.api?.kubeconfig) helm(['uninstall', 'mtrelay', '--namespace', RELEASE_NS, '--kubeconfig', this.api.kubeconfig, '--wait', '--timeout', '2m']);
      } catch (error) {
        log(`helm uninstall: ${(error as Error).message}`);
      }
      await this.node?.stop();
      await Promise.all([this.api?.stop(), this.broker?.stop(), this.postgres?.stop()]);
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.#stopped;
  }
}

/** A folder for one run's cluster, in the ignored cache. */
export const releaseDir = (name: string) => path.join(repoRoot, '.cache', 'test-runs', `${name}-${process.pid}`);
