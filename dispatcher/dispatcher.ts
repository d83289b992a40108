// Routes each event to the webhooks of its account (namespace) that want its type, one queue
// per webhook, and tells its source when every one of them is done with it (delivered or
// dropped), so the source's position only moves past events no webhook still needs. Follows
// the config: a new or changed webhook gets a test batch; a removed one lets its events go.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConfigStore } from '../shared/config/store.ts';
import type { CompiledWebhook } from '../shared/config/types.ts';
import type { DeliveryStatusBook } from './delivery-status.ts';
import type { DispatcherMetrics } from './metrics.ts';
import { sparkPostEvent, TEST_BATCH, type StoredEvent } from './sparkpost-shape.ts';
import { WebhookQueue, type DispatchPolicy, type Send } from './webhook-queue.ts';

export interface DispatcherOptions {
  store: ConfigStore;
  policy: DispatchPolicy;
  send: Send;
  metrics: DispatcherMetrics;
  status: DeliveryStatusBook;
  logger: Logger;
}

interface Running {
  queue: WebhookQueue;
  fingerprint: string;
}

/** What decides whether a receiver must be tested again: where it is and how it is reached. */
function fingerprint(webhook: CompiledWebhook): string {
  return createHash('sha256').update(JSON.stringify([webhook.url, webhook.auth, webhook.signingSecret ?? null])).digest('hex');
}

export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #running = new Map<string, Running>();

  readonly #onChange = () => this.#sync();

  constructor(options: DispatcherOptions) {
    this.#o = options;
    options.store.on('change', this.#onChange);
    this.#sync();
  }

  /** After the source's last commit: no more posts; what waits is for the next dispatcher. */
  stop(): void {
    this.#o.store.off('change', this.#onChange);
    for (const { queue } of this.#running.values()) queue.stop();
  }

  #webhooks(namespace: string): CompiledWebhook[] {
    return this.#o.store.current?.document.namespaces[namespace]?.webhooks ?? [];
  }

  #webhook(key: string): CompiledWebhook | undefined {
    const [namespace, name] = key.split('/') as [string, string];
    return this.#webhooks(namespace).find((w) => w.name === name);
  }

  /** Hands an event to every webhook that wants it; `done` runs once all of them are finished with it. */
  dispatch(event: StoredEvent, done: () => void): void {
    const wanted = this.#webhooks(event.namespace).filter((w) => !w.events.length || (w.events as string[]).includes(event.type));
    if (!wanted.length) {
      done();
      return;
    }
    const shaped = sparkPostEvent(event);
    const bytes = JSON.stringify(shaped).length;
    let remaining = wanted.length;
    const one = () => {
      if (--remaining === 0) done();
    };
    for (const webhook of wanted) {
      const queue = this.#queue(`${event.namespace}/${webhook.name}`);
      queue.push({ event: shaped, bytes, done: one });
      this.#o.metrics.backlog.set({ account: event.namespace, webhook: webhook.name }, queue.backlog);
    }
  }

  /** Events waiting in all queues. */
  get backlog(): number {
    let n = 0;
    for (const { queue } of this.#running.values()) n += queue.backlog;
    return n;
  }

  /** Waits for posts in progress to end (a drain: what waits for a retry is taken up by the next dispatcher). */
  async idle(): Promise<void> {
    await Promise.all([...this.#running.values()].map(({ queue }) => queue.idle()));
  }

  #queue(key: string): WebhookQueue {
    let running = this.#running.get(key);
    if (!running) {
      running = { queue: this.#newQueue(key), fingerprint: fingerprint(this.#webhook(key)!) };
      this.#running.set(key, running);
    }
    return running.queue;
  }

  #newQueue(key: string): WebhookQueue {
    const [account, webhook] = key.split('/') as [string, string];
    const labels = { account, webhook };
    const { metrics, status, logger } = this.#o;
    const queue: WebhookQueue = new WebhookQueue(() => this.#webhook(key), this.#o.send, this.#o.policy, {
      delivered: (events, at) => {
        metrics.events.inc({ ...labels, result: 'delivered' }, events);
        metrics.attempts.inc({ ...labels, result: 'ok' });
        metrics.failing.set(labels, 0);
        metrics.backlog.set(labels, queue.backlog - events);
        const since = status.get(key).failingSince;
        if (since) status.announce(key, { type: 'Normal', reason: 'DeliveryRecovered', message: `the webhook answers again (failing since ${since})` });
        status.succeeded(key, at.toISOString());
      },
      failed: (reason, at, attempt) => {
        metrics.attempts.inc({ ...labels, result: 'failed' });
        metrics.failing.set(labels, 1);
        logger.warn({ webhook: key, reason, attempt }, 'webhook batch not taken; it is posted again later');
        if (!status.get(key).failingSince) status.announce(key, { type: 'Warning', reason: 'DeliveryFailing', message: `posts to the webhook fail (${reason}); events wait and are posted in order once it answers` });
        status.failed(key, at.toISOString(), reason);
      },
      dropped: (events, reason, at) => {
        metrics.events.inc({ ...labels, result: 'dropped' }, events);
        metrics.drops.inc(labels);
        metrics.backlog.set(labels, Math.max(0, queue.backlog - events));
        logger.error({ webhook: key, events, reason }, 'webhook events dropped');
        status.announce(key, { type: 'Warning', reason: 'EventsDropped', message: `${events} events dropped: ${reason}` });
        status.update(key, (s) => {
          s.lastDropAt = at.toISOString();
          s.lastDrop = `${events} events: ${reason}`;
        });
      },
    });
    return queue;
  }

  /** Queues for webhooks that appeared, changed or went; a test batch to each new or changed one. */
  #sync(): void {
    const present = new Set<string>();
    for (const [namespace, { webhooks = [] }] of Object.entries(this.#o.store.current?.document.namespaces ?? {})) {
      for (const webhook of webhooks) {
        const key = `${namespace}/${webhook.name}`;
        present.add(key);
        const print = fingerprint(webhook);
        const running = this.#running.get(key);
        if (running?.fingerprint === print) continue;
        if (running) running.fingerprint = print;
        else this.#running.set(key, { queue: this.#newQueue(key), fingerprint: print });
        void this.#test(key, webhook, print);
      }
    }
    for (const [key, { queue }] of this.#running) {
      if (present.has(key)) continue;
      queue.close();
      this.#running.delete(key);
      this.#o.status.forget(key);
      const [account, webhook] = key.split('/') as [string, string];
      this.#o.metrics.backlog.remove({ account, webhook });
      this.#o.metrics.failing.remove({ account, webhook });
    }
  }

  /**
   * One post of the test batch, not retried: its result shows in the status. Its batch id is the
   * same for the same settings, so a receiver can drop the repeats several dispatchers send.
   */
  async #test(key: string, webhook: CompiledWebhook, print: string): Promise<void> {
    const result = await this.#o.send(webhook, `test-${print.slice(0, 32)}`, TEST_BATCH);
    const at = new Date().toISOString();
    this.#o.logger.info({ webhook: key, url: webhook.url, result: result.ok ? 'ok' : result.reason }, 'webhook test batch sent');
    this.#o.status.update(key, (s) => {
      s.lastTest = { at, result: result.ok ? `ok (HTTP ${result.status})` : result.reason };
    });
    if (result.ok) this.#o.status.succeeded(key, at);
    else this.#o.status.failed(key, at, `test batch: ${result.reason}`);
  }
}
