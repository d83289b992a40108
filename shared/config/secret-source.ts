// Keeps a ConfigStore in step with the config Secrets the operator writes (see
// config-secrets.ts). It watches only the index Secret (a field selector on its name, so a
// Role that names the Secrets is enough) and gets the further pieces by name; a document is
// put in force only when every piece matches the index, so a swap is always whole.
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from '../kube/client.ts';
import { resourcePath } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import { ConfigPiecesOutOfStep, decodeConfigSecrets, readConfigIndex } from './config-secrets.ts';
import type { ConfigStore } from './store.ts';
import type { CompiledConfig } from './types.ts';

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

export interface SecretSourceOptions {
  client: KubeClient;
  /** `namespace/name` of the index Secret. */
  secret: string;
  store: ConfigStore;
  logger: Logger;
  onError?: (error: Error) => void;
  view?: (config: CompiledConfig) => CompiledConfig;
  /** Passed to the informer (tests shorten them). */
  relistMs?: number;
  /** How long start() waits for the first config before the pod starts not ready (default 5 s). */
  startWaitMs?: number;
}

export function parseSecretRef(value: string): { namespace: string; name: string } {
  const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(value);
  if (!match) throw new Error(`"${value}" is not NAMESPACE/NAME of a Secret`);
  return { namespace: match[1]!, name: match[3]! };
}

export class SecretConfigSource {
  readonly #options: SecretSourceOptions;
  readonly #namespace: string;
  readonly #name: string;
  readonly #informer: Informer<SecretObject>;
  #loading: Promise<void> | undefined;
  #again = false;
  #retry: NodeJS.Timeout | undefined;
  #startTimer: NodeJS.Timeout | undefined;
  #failures = 0;

  constructor(options: SecretSourceOptions) {
    this.#options = options;
    ({ namespace: this.#namespace, name: this.#name } = parseSecretRef(options.secret));
    this.#informer = new Informer<SecretObject>({
      client: options.client,
      path: resourcePath('v1', 'secrets', this.#namespace),
      fieldSelector: `metadata.name=${this.#name}`,
      logger: options.logger,
      relistMs: options.relistMs,
      onEvent: () => this.#load(),
      onSynced: () => this.#load(),
    });
  }

  /**
   * Resolves once the config is loaded, or after `startWaitMs` at the latest: a pod whose
   * config is not there yet (or not readable) still starts, reports not ready, and keeps
   * trying in the background.
   */
  async start(): Promise<void> {
    const loaded = this.#informer.start().then(() => this.#loading);
    const waited = new Promise<void>((resolve) => { this.#startTimer = setTimeout(resolve, this.#options.startWaitMs ?? 5000); });
    await Promise.race([loaded, waited]);
    clearTimeout(this.#startTimer);
    if (!this.#options.store.loaded) {
      this.#options.logger.warn({ secret: this.#options.secret }, 'no config loaded yet (Secret missing or not readable); not ready until it is');
    }
  }

  stop(): void {
    clearTimeout(this.#retry);
    clearTimeout(this.#startTimer);
    void this.#informer.stop();
  }

  /** One load at a time; a change during a load triggers one more. */
  #load(): void {
    if (this.#loading) {
      this.#again = true;
      return;
    }
    this.#loading = this.#loadOnce().finally(() => {
      this.#loading = undefined;
      if (this.#again) {
        this.#again = false;
        this.#load();
      }
    });
  }

  async #loadOnce(): Promise<void> {
    const { store, logger, client } = this.#options;
    const indexSecret = this.#informer.get(this.#name, this.#namespace);
    if (!indexSecret) return; // deleted: keep the last good config
    try {
      const index = readConfigIndex(indexSecret.data);
      if (!index) throw new Error(`Secret ${this.#options.secret} has no config index`);
      if (store.current?.document.revision === index.revision) return;
      const pieces = new Map<string, Record<string, string> | undefined>([[this.#name, indexSecret.data]]);
      for (const { secret } of index.pieces.slice(1)) {
        pieces.set(secret, (await client.get<SecretObject>(resourcePath('v1', 'secrets', this.#namespace, secret)))?.data);
      }
      const document = decodeConfigSecrets(index, (name) => pieces.get(name));
      const view = this.#options.view ? this.#options.view(document) : document;
      if (store.apply(view)) {
        logger.info({ revision: view.revision, generation: store.current!.generation, apiKeys: view.apiKeys.length,
          namespaces: Object.keys(view.namespaces).length, pieces: index.pieces.length }, 'config loaded');
      }
      this.#failures = 0;
    } catch (error) {
      // Every failure is retried soon (a revoked key must not wait for the next relist):
      // pieces out of step mean a write in progress; anything else backs off up to 30 s.
      const outOfStep = error instanceof ConfigPiecesOutOfStep;
      const delayMs = outOfStep ? 500 : Math.min(30_000, 1000 * 2 ** this.#failures++);
      if (outOfStep) logger.debug({ reason: (error as Error).message }, 'config pieces out of step; retrying');
      else {
        logger.error({ err: error, secret: this.#options.secret, retryInMs: delayMs }, 'config Secret is unusable; keeping the last good config');
        this.#options.onError?.(error as Error);
      }
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => this.#load(), delayMs);
      this.#retry.unref();
    }
  }
}
