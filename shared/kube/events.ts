// Kubernetes Events, so `kubectl describe` tells what the operator (or a dispatcher) did and why. A repeat of
// the same event on the same object within ten minutes bumps its count instead of adding one.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { resourcePath, type KubeClient } from './client.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; resourceVersion?: string };
}

const REPEAT_WINDOW_MS = 10 * 60_000;

export class EventRecorder {
  readonly #client: KubeClient;
  readonly #logger: Logger;
  readonly #component: string;
  readonly #instance: string;
  readonly #recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();

  constructor(client: KubeClient, logger: Logger, component: string, instance: string) {
    this.#client = client;
    this.#logger = logger;
    this.#component = component;
    this.#instance = instance;
  }

  normal(target: EventTarget, reason: string, message: string): void {
    void this.#record(target, 'Normal', reason, message);
  }

  warning(target: EventTarget, reason: string, message: string): void {
    void this.#record(target, 'Warning', reason, message);
  }

  async #record(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const { namespace, name, uid } = target.metadata;
    const key = `${uid}|${type}|${reason}|${message}`;
    const now = new Date();
    for (const [k, v] of this.#recent) if (now.getTime() - v.at > REPEAT_WINDOW_MS) this.#recent.delete(k);
    try {
      const seen = this.#recent.get(key);
      if (seen) {
        seen.count++;
        seen.at = now.getTime();
        await this.#client.mergePatch(resourcePath('v1', 'events', seen.namespace, seen.name), { count: seen.count, lastTimestamp: now.toISOString() });
        return;
      }
      const eventName = `${name}.${randomBytes(8).toString('hex')}`;
      await this.#client.create(resourcePath('v1', 'events', namespace), {
        apiVersion: 'v1', kind: 'Event', metadata: { name: eventName, namespace },
        involvedObject: { apiVersion: target.apiVersion, kind: target.kind, name, namespace, uid },
        type, reason, message: message.slice(0, 1024), count: 1,
        firstTimestamp: now.toISOString(), lastTimestamp: now.toISOString(),
        source: { component: this.#component, host: this.#instance },
        reportingComponent: this.#component, reportingInstance: this.#instance,
      });
      this.#recent.set(key, { name: eventName, namespace, count: 1, at: now.getTime() });
    } catch (error) {
      this.#logger.warn({ err: error, reason, object: `${namespace}/${name}` }, 'could not record a Kubernetes Event');
    }
  }
}
