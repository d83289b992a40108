// How each webhook's posts are going, kept per webhook and written to its status
// (status.delivery) where a Kubernetes API is at hand: last success, last failure and its
// reason, since when it has been failing, the last drop. Writes are coalesced: at most one per
// webhook every few seconds, whatever the rate of batches. The turns that matter (failing,
// recovered, events dropped) also become Kubernetes Events on the Webhook, once its status write
// has told its uid.
import type { Logger } from 'pino';

export interface DeliveryStatus {
  lastSuccessAt?: string;
  lastFailureAt?: string;
  lastFailure?: string;
  /** Set at the first failure after a success (or ever), cleared by the next success. */
  failingSince?: string | null;
  lastDropAt?: string;
  lastDrop?: string;
  /** Result of the last test batch (sent when the webhook first appears or changes). */
  lastTest?: { at: string; result: string };
}

/** Where status goes: the Webhook resource's status subresource (resolving with its uid), or nowhere (folder mode logs only). */
export type StatusWriter = (namespace: string, name: string, status: DeliveryStatus) => Promise<{ uid?: string }>;

export interface WebhookEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** Records Kubernetes Events on a Webhook (shared/kube/events.ts). */
export type EventAnnouncer = (webhook: { namespace: string; name: string; uid: string }, event: WebhookEvent) => void;

const WRITE_EVERY_MS = 5000;

export class DeliveryStatusBook {
  readonly #statuses = new Map<string, DeliveryStatus>();
  readonly #dirty = new Set<string>();
  readonly #events = new Map<string, WebhookEvent[]>();
  readonly #write: StatusWriter | undefined;
  readonly #announce: EventAnnouncer | undefined;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(write: StatusWriter | undefined, logger: Logger, announce?: EventAnnouncer) {
    this.#write = write;
    this.#announce = announce;
    this.#logger = logger;
  }

  get(key: string): DeliveryStatus {
    return this.#statuses.get(key) ?? {};
  }

  update(key: string, change: (status: DeliveryStatus) => void): void {
    const status = this.#statuses.get(key) ?? {};
    change(status);
    this.#statuses.set(key, status);
    if (!this.#write) return;
    this.#dirty.add(key);
    this.#timer ??= setTimeout(() => void this.flush(), WRITE_EVERY_MS);
  }

  /** A post the receiver took: failing no more. */
  succeeded(key: string, at: string): void {
    this.update(key, (s) => {
      s.lastSuccessAt = at;
      s.failingSince = null;
    });
  }

  /** A post that failed: failing since the first failure after a success. */
  failed(key: string, at: string, reason: string): void {
    this.update(key, (s) => {
      s.lastFailureAt = at;
      s.lastFailure = reason;
      s.failingSince ??= at;
    });
  }

  /** A Kubernetes Event for the webhook, recorded with its next status write. */
  announce(key: string, event: WebhookEvent): void {
    if (!this.#write || !this.#announce) return;
    const pending = this.#events.get(key) ?? [];
    pending.push(event);
    this.#events.set(key, pending.slice(-10));
  }

  forget(key: string): void {
    this.#statuses.delete(key);
    this.#dirty.delete(key);
    this.#events.delete(key);
  }

  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const keys = [...this.#dirty];
    this.#dirty.clear();
    await Promise.all(keys.map(async (key) => {
      const [namespace, name] = key.split('/') as [string, string];
      try {
        const { uid } = await this.#write!(namespace, name, this.get(key));
        const events = this.#events.get(key) ?? [];
        this.#events.delete(key);
        if (uid) for (const event of events) this.#announce?.({ namespace, name, uid }, event);
      } catch (error) {
        this.#logger.warn({ err: error, webhook: key }, 'webhook status not written');
      }
    }));
  }

  stop(): Promise<void> {
    return this.flush();
  }
}
