// An informer that stays right: @kubernetes/client-node's ListWatch keeps a cache from
// list + watch, and this wrapper replaces it with a fresh one (a full relist) when the watch
// fails, when it has gone silent for too long (the watchdog), and on a fixed period — with
// exponential backoff between failed attempts. Objects that vanished while the watch was
// down are reported as deletions after a relist.
import { ListWatch, Watch, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from './client.ts';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions<T extends KubeObject> {
  client: KubeClient;
  /** The list path, e.g. /api/v1/secrets or /apis/mtrelay.dev/v1alpha1/apikeys. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  logger: Logger;
  onEvent: (event: InformerEvent, object: T) => void;
  /** Called after every complete list, including relists. */
  onSynced?: () => void;
  /** Called when a fresh list replaces the cache (watch failure, watchdog, periodic relist). */
  onRestart?: (reason: string) => void;
  /** A full relist this often even when all is well (default 5 minutes). */
  relistMs?: number;
  /** Restart when nothing (event or reconnect) was seen for this long (default 2 minutes). */
  watchdogMs?: number;
}

const MIN_BACKOFF_MS = 1000;
const PAGE_SIZE = 500;
const MAX_BACKOFF_MS = 60_000;

const keyOf = (object: KubeObject) => `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;

export class Informer<T extends KubeObject> {
  readonly #options: InformerOptions<T>;
  #current: ListWatch<KubernetesObject> | undefined;
  #lastActivity = Date.now();
  #lastList = 0;
  #backoffMs = MIN_BACKOFF_MS;
  #timer: NodeJS.Timeout | undefined;
  #restarting = false;
  #stopped = false;
  #wakeFromBackoff: (() => void) | undefined;
  restarts = 0;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
  }

  get synced(): boolean {
    return this.#current !== undefined;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#current?.get(name, namespace) as T | undefined;
  }

  list(namespace?: string): readonly T[] {
    return (this.#current?.list(namespace) ?? []) as readonly T[];
  }

  /** Resolves after the first complete list (retrying with backoff while the API server is unreachable). */
  async start(): Promise<void> {
    await this.#restart('start');
    if (this.#stopped) return;
    this.#timer = setInterval(() => this.#check(), 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#wakeFromBackoff?.();
    await this.#current?.stop();
  }

  #check(): void {
    if (this.#restarting || this.#stopped) return;
    const { relistMs = 300_000, watchdogMs = 120_000 } = this.#options;
    if (Date.now() - this.#lastActivity > watchdogMs) void this.#restart('watchdog: the watch went silent');
    else if (Date.now() - this.#lastList > relistMs) void this.#restart('periodic relist');
  }

  async #restart(reason: string): Promise<void> {
    if (this.#restarting || this.#stopped) return;
    this.#restarting = true;
    // A silent or failed watch is worth a warning; the periodic relist is routine.
    if (reason !== 'start') this.#options.logger[reason === 'periodic relist' ? 'debug' : 'warn']({ path: this.#options.path, reason }, 'relisting');
    try {
      for (;;) {
        try {
          await this.#replace(reason);
          this.#backoffMs = MIN_BACKOFF_MS;
          return;
        } catch (error) {
          this.#options.logger.warn({ err: error, path: this.#options.path, retryInMs: this.#backoffMs },
            'informer list failed; retrying');
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, this.#backoffMs);
            this.#wakeFromBackoff = () => { clearTimeout(timer); resolve(); };
          });
          this.#wakeFromBackoff = undefined;
          this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
          if (this.#stopped) return;
        }
      }
    } finally {
      this.#restarting = false;
    }
  }

  /** Lists afresh into a new ListWatch and swaps it in; events are held back until the swap. */
  async #replace(reason: string): Promise<void> {
    const { client, path, labelSelector, fieldSelector, logger, onEvent } = this.#options;
    const pending: [InformerEvent, T][] = [];
    const watch = new Watch(client.config);
    // Listed in pages, so a namespace with many objects never has to fit in one response.
    const listFn = async () => {
      const items: (KubernetesObject & KubeObject)[] = [];
      let page: Awaited<ReturnType<typeof client.list<KubernetesObject & KubeObject>>>;
      let token: string | undefined;
      do {
        page = await client.list<KubernetesObject & KubeObject>(path, { labelSelector, fieldSelector, limit: String(PAGE_SIZE), continue: token });
        items.push(...page.items);
        token = (page.metadata as { continue?: string }).continue || undefined;
      } while (token);
      return { ...page, items };
    };
    const next: ListWatch<KubernetesObject> = new ListWatch(path, watch, listFn as never, false, labelSelector, fieldSelector);
    const deliver = (event: InformerEvent) => (object: KubernetesObject) => {
      this.#lastActivity = Date.now();
      if (this.#current === next) onEvent(event, object as T);
      else pending.push([event, object as T]);
    };
    next.on('add', deliver('add'));
    next.on('update', deliver('update'));
    next.on('delete', deliver('delete'));
    next.on('connect', () => { this.#lastActivity = Date.now(); });
    let failed: Error | undefined;
    next.on('error', (error?: unknown) => {
      failed = error instanceof Error ? error : new Error(String((error as { message?: string })?.message ?? error));
      if (this.#current === next && !this.#stopped) {
        logger.warn({ err: failed, path }, 'watch failed; relisting');
        void this.#restart('watch failed');
      }
    });
    await next.start();
    if (this.#stopped) {
      await next.stop();
      return;
    }
    if (failed) {
      await next.stop();
      throw failed;
    }
    const previous = this.#current;
    this.#current = next;
    this.#lastList = Date.now();
    this.#lastActivity = Date.now();
    if (previous) {
      this.restarts++;
      this.#options.onRestart?.(reason);
      await previous.stop();
      const present = new Set(next.list().map((o) => keyOf(o as KubeObject)));
      for (const object of previous.list()) if (!present.has(keyOf(object as KubeObject))) onEvent('delete', object as T);
      logger.debug({ path, reason }, 'informer relisted');
    }
    for (const [event, object] of pending) onEvent(event, object);
    this.#options.onSynced?.();
  }
}
