// Leader election on a coordination.k8s.io Lease, as client-go does it: the holder renews
// the Lease every retry period; another replica takes it over only when it has not seen the
// Lease change for a whole lease duration; a leader that cannot renew within the renew
// deadline stops leading. On a clean shutdown the Lease is released so a standby takes over
// at once. Writes carry the resourceVersion read, so two replicas never both win.
import type { Logger } from 'pino';
import { isConflict, resourcePath, type KubeClient } from '../shared/kube/client.ts';

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  logger: Logger;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** Every failed attempt to read, take or renew the Lease (a conflict with another replica is no failure). */
  onFailure?: (reason: string) => void;
}

/** Kubernetes MicroTime: RFC 3339 with six fractional digits. */
const microTime = (date: Date) => date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class LeaderElector {
  readonly #o: Required<LeaderElectionOptions>;
  #leader = false;
  #lastRenew = 0;
  #observed = { record: '', at: 0 };
  #timer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #tick: Promise<void> | undefined;
  /** The other replica this one was last seen standing by for, so that is logged once per holder. */
  #standingBy: string | undefined;
  #failure: string | undefined;

  constructor(options: LeaderElectionOptions) {
    const o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000, onFailure: () => undefined, ...options };
    // A Lease request that hangs must not outlive the renew deadline.
    this.#o = { ...o, client: o.client.withTimeout(Math.max(500, Math.min(o.retryPeriodMs, o.renewDeadlineMs / 2))) };
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /** Why the last attempt to take or renew the Lease failed, while it keeps failing. */
  get failure(): string | undefined {
    return this.#failure;
  }

  get #path(): string {
    return resourcePath('coordination.k8s.io/v1', 'leases', this.#o.namespace, this.#o.name);
  }

  start(): void {
    // The deadline is watched apart from the renew loop, so a hanging request cannot hide it.
    this.#deadlineTimer = setInterval(() => this.#checkDeadline(new Date()), Math.min(500, this.#o.retryPeriodMs));
    this.#deadlineTimer.unref();
    const loop = () => {
      if (this.#stopped) return;
      this.#tick = this.#tryAcquireOrRenew().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(loop, this.#o.retryPeriodMs);
      });
    };
    loop();
  }

  /** Stops competing; a leader releases the Lease. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#deadlineTimer);
    await this.#tick;
    if (!this.#leader) return;
    this.#leader = false;
    try {
      const lease = await this.#o.client.get<Lease>(this.#path);
      if (lease?.spec.holderIdentity === this.#o.identity) {
        await this.#o.client.replace(this.#path, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) } });
        this.#o.logger.info({ lease: `${this.#o.namespace}/${this.#o.name}` }, 'leadership released');
      }
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'could not release the leader Lease; it expires by itself');
    }
  }

  async #tryAcquireOrRenew(): Promise<void> {
    const { client, identity, logger, leaseDurationMs } = this.#o;
    const now = new Date();
    try {
      const lease = await client.get<Lease>(this.#path);
      const spec = { holderIdentity: identity, leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000), renewTime: microTime(now) };
      if (!lease) {
        await client.create(resourcePath('coordination.k8s.io/v1', 'leases', this.#o.namespace), {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.#o.name, namespace: this.#o.namespace },
          spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
        } satisfies Lease);
      } else {
        const record = JSON.stringify(lease.spec);
        if (record !== this.#observed.record) this.#observed = { record, at: now.getTime() };
        const holder = lease.spec.holderIdentity;
        const heldByOther = Boolean(holder) && holder !== identity;
        if (heldByOther && now.getTime() < this.#observed.at + (lease.spec.leaseDurationSeconds ?? 15) * 1000) {
          this.#failure = undefined;
          if (this.#standingBy !== holder) {
            this.#standingBy = holder;
            logger.info({ lease: `${this.#o.namespace}/${this.#o.name}`, holder }, 'standing by: another replica holds the Lease');
          }
          this.#checkDeadline(now);
          return;
        }
        const acquiring = holder !== identity;
        await client.replace(this.#path, {
          ...lease,
          spec: {
            ...lease.spec, ...spec,
            ...(acquiring ? { acquireTime: microTime(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (holder ? 1 : 0) } : {}),
          },
        });
      }
      this.#failure = undefined;
      if (this.#leader && Date.now() - this.#lastRenew > this.#o.renewDeadlineMs) return; // lost meanwhile; #checkDeadline acts
      this.#lastRenew = now.getTime();
      if (!this.#leader && !this.#stopped) {
        this.#leader = true;
        this.#standingBy = undefined;
        logger.info({ lease: `${this.#o.namespace}/${this.#o.name}`, identity }, 'became the leader');
        this.#o.onStartedLeading();
      }
    } catch (error) {
      // A conflict is another replica winning the race: no failure. Anything else (the namespace
      // missing, a Forbidden Lease, an unreachable API server) is said, once per reason.
      if (!isConflict(error)) {
        const reason = (error as Error).message;
        if (reason !== this.#failure) logger.error({ err: error, lease: `${this.#o.namespace}/${this.#o.name}` }, 'cannot take or renew the leader Lease; not leading until it can');
        this.#failure = reason;
        this.#o.onFailure?.(reason);
      }
      this.#checkDeadline(now);
    }
  }

  #checkDeadline(now: Date): void {
    if (this.#leader && now.getTime() - this.#lastRenew > this.#o.renewDeadlineMs) {
      this.#leader = false;
      this.#o.logger.error({ lease: `${this.#o.namespace}/${this.#o.name}` }, 'lost leadership: could not renew the Lease in time');
      this.#o.onStoppedLeading();
    }
  }
}
