// Keeps a ConfigStore in step with a folder of manifests: reloads on change (file events,
// with a poll as a safety net). Problems are isolated as the operator isolates them: a file
// that cannot be parsed keeps its own resources as they last were (manifest-folder.ts), a
// resource with a problem is left out (an ApiKey without its Secret fails closed), and
// everything else applies, so one mistake never holds back a revocation elsewhere. The first
// load must be whole: with nothing to fall back on, a broken folder stops the start.
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { compileDocuments } from './compiler.ts';
import { folderFingerprint, readManifestFolder, type LastGoodFiles } from './manifest-folder.ts';
import { ConfigCompileError, describeProblem, type ConfigProblem } from './problems.ts';
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
  readonly #lastGood: LastGoodFiles = new Map();
  /** The problems last reported, so an unchanged problem is logged once, not at every reload. */
  #reported = new Set<string>();

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
      const read = await readManifestFolder(dir, this.#lastGood);
      const { config: compiled, problems } = compileDocuments(read.documents);
      const all = [...read.problems, ...problems];
      if (first && all.length) throw new ConfigCompileError(all);
      const document = this.#options.view ? this.#options.view(compiled) : compiled;
      if (store.apply(document)) {
        const loaded = store.current!;
        logger.info({ revision: document.revision, generation: loaded.generation, apiKeys: document.apiKeys.length,
          namespaces: Object.keys(document.namespaces).length }, 'config loaded');
        this.#warnUnsigned(document);
      }
      this.#reportProblems(read.problems, problems);
    } catch (error) {
      if (first) throw error;
      this.#report(error as Error);
    }
  }

  /** Each problem once while it lasts; any problem counts as a refused reload in the metric. */
  #reportProblems(files: ConfigProblem[], resources: ConfigProblem[]): void {
    const { logger } = this.#options;
    const now = new Set<string>();
    const log = (problem: ConfigProblem, message: string) => {
      const line = describeProblem(problem);
      now.add(line);
      if (!this.#reported.has(line)) logger.error({ problem: line, dir: this.#options.dir }, message);
    };
    for (const p of files) log(p, 'manifest cannot be read; its resources stay as they last were, its Secrets are not used');
    for (const p of resources) log(p, 'resource left out of the config');
    if (now.size) this.#options.onError?.(new ConfigCompileError([...files, ...resources]));
    this.#reported = now;
  }

  /** In folder mode nothing else says it: a SendingDomain without its key cannot send. */
  #warnUnsigned(document: CompiledConfig): void {
    for (const [namespace, { domains }] of Object.entries(document.namespaces)) {
      for (const domain of Object.values(domains)) {
        if (!domain.noDkimKey) continue;
        this.#options.logger.warn({ resource: `SendingDomain ${namespace}/${domain.resource}`, domain: domain.domain },
          `SendingDomain has no DKIM key: mail from ${domain.domain} is refused until Secret ${namespace}/${domain.resource}-dkim holds its privateKey`);
      }
    }
  }

  #report(error: Error): void {
    this.#options.logger.error({ err: error, dir: this.#options.dir },
      'config folder is broken; keeping the last good config');
    this.#options.onError?.(error);
  }
}
