// Keeps a ConfigStore in step with a folder of manifests: reloads on change (file events,
// with a poll as a safety net), keeps the last good config when the folder is broken.
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { compileManifestFolder, folderFingerprint } from './manifest-folder.ts';
import type { ConfigStore } from './store.ts';
import type { CompiledConfig } from './types.ts';

export interface FolderSourceOptions {
  dir: string;
  store: ConfigStore;
  logger: Logger;
  /** How often the folder is checked even without file events. */
  pollMs?: number;
  onError?: (error: Error) => void;
  /** Narrows the document before it is put in force (the relay drops private keys). */
  view?: (config: CompiledConfig) => CompiledConfig;
}

export class FolderConfigSource {
  readonly #options: FolderSourceOptions;
  #fingerprint = '';
  #timer: NodeJS.Timeout | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: FolderSourceOptions) {
    this.#options = options;
  }

  /** Loads the folder once; throws when the first load fails, since there is no last good config. */
  async start(): Promise<void> {
    await this.reload(true);
    this.#timer = setInterval(() => void this.check(), this.#options.pollMs ?? 1000);
    this.#timer.unref();
    try {
      this.#watcher = watch(this.#options.dir, { recursive: true }, () => this.#soon());
      this.#watcher.on('error', () => undefined); // the poll still runs
    } catch {
      // some file systems cannot be watched; the poll covers them
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    this.#watcher?.close();
  }

  #soon(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.check(), 100);
  }

  /** Reloads when the folder's fingerprint changed; one check at a time. */
  async check(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = (async () => {
      try {
        const fingerprint = await folderFingerprint(this.#options.dir);
        if (fingerprint !== this.#fingerprint) await this.reload(false);
      } catch (error) {
        this.#report(error as Error);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async reload(first: boolean): Promise<void> {
    const { dir, store, logger } = this.#options;
    this.#fingerprint = await folderFingerprint(dir);
    try {
      const compiled = await compileManifestFolder(dir);
      const document = this.#options.view ? this.#options.view(compiled) : compiled;
      if (store.apply(document)) {
        const loaded = store.current!;
        logger.info({ revision: document.revision, generation: loaded.generation, apiKeys: document.apiKeys.length,
          namespaces: Object.keys(document.namespaces).length }, 'config loaded');
      }
    } catch (error) {
      if (first) throw error;
      this.#report(error as Error);
    }
  }

  #report(error: Error): void {
    this.#options.logger.error({ err: error, dir: this.#options.dir },
      'config folder is broken; keeping the last good config');
    this.#options.onError?.(error);
  }
}
