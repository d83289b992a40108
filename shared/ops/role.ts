// The life of every role's process, written once: a metrics registry, the operations
// endpoint (/metrics, /healthz, /readyz) up from the first moment, the config the role reads,
// readiness made of the checks each part adds, and an orderly stop. Each part registers its
// stop step as it starts; SIGTERM runs the steps in that order (stop taking work, drain,
// flush), closes the endpoint last and exits 0 — or 1 when a step failed.
import type http from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { openConfigSource, type ConfigOrigin } from '../config/sources.ts';
import { ConfigStore } from '../config/store.ts';
import type { CompiledConfig } from '../config/types.ts';
import { createLogger } from './logger.ts';
import { listeningPort, startOpsServer } from './http.ts';
import { createRegistry } from './metrics.ts';

export interface RoleOptions {
  /** `relay`, `deliverer`, `standalone`, `operator`: the log's component and the role's name. */
  name: string;
  logger: Logger;
  metricsHost: string;
  metricsPort: number;
}

type Step = { what: string; run: () => void | Promise<void> };

export class Role {
  readonly name: string;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly #checks: (() => string | undefined)[] = [];
  readonly #steps: Step[] = [];
  #ops: http.Server | undefined;
  #starting = true;
  #startingBecause: string | undefined;
  #draining = false;
  #stopping: Promise<void> | undefined;

  private constructor(options: RoleOptions) {
    this.name = options.name;
    this.logger = options.logger;
    this.registry = createRegistry();
    // Readiness as a metric too, so an alert can tell "no relay is ready" from "none scraped".
    const notReady = () => this.#notReady();
    new Gauge({
      name: 'mtrelay_ready', help: '1 while /readyz answers 200, by role', labelNames: ['role'], registers: [this.registry],
      collect() { this.set({ role: options.name }, notReady() ? 0 : 1); },
    });
  }

  /** Starts the operations endpoint at once: /healthz answers while the role still starts, /readyz says "starting". */
  static async start(options: RoleOptions): Promise<Role> {
    const role = new Role(options);
    role.#ops = await startOpsServer({ host: options.metricsHost, port: options.metricsPort, registry: role.registry, readiness: () => role.#notReady() });
    return role;
  }

  get metricsPort(): number {
    return this.#ops ? listeningPort(this.#ops) : 0;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** A reason not to be ready (or undefined when this part is fine), asked on every /readyz. */
  readiness(check: () => string | undefined): void {
    this.#checks.push(check);
  }

  /** A step of the stop sequence. Steps run in the order they were added: add them as the parts start. */
  onStop(what: string, run: () => void | Promise<void>): void {
    this.#steps.push({ what, run });
  }

  /** While starting: what the role waits for, shown on /readyz. */
  waiting(reason: string): void {
    this.#startingBecause = reason;
  }

  /** Everything has started: from now on readiness is the parts' checks alone. */
  started(fields: Record<string, unknown>, message: string): void {
    this.#starting = false;
    this.logger.info({ metricsPort: this.metricsPort, ...fields }, message);
  }

  #notReady(): string | undefined {
    if (this.#draining) return 'draining';
    if (this.#starting) return this.#startingBecause ? `starting: ${this.#startingBecause}` : 'starting';
    for (const check of this.#checks) {
      const reason = check();
      if (reason) return reason;
    }
    return undefined;
  }

  /**
   * The config this role reads (a folder of manifests or the operator's Secret), kept current
   * in a store. Not ready until a config was loaded; the source stops first when draining.
   */
  async openConfig(origin: ConfigOrigin, view?: (config: CompiledConfig) => CompiledConfig): Promise<ConfigStore> {
    const registers = [this.registry];
    const generation = new Gauge({ name: 'mtrelay_config_generation', help: 'How many configs this process has put in force', registers });
    const reloadErrors = new Counter({ name: 'mtrelay_config_reload_errors_total', help: 'Config reloads that found problems (a broken file keeps its resources as they were; a resource with a problem is left out)', registers });
    const store = new ConfigStore();
    store.on('change', (loaded) => generation.set(loaded.generation));
    const source = await openConfigSource(origin, { store, logger: this.logger, onError: () => reloadErrors.inc(), ...(view ? { view } : {}) });
    await source.start();
    this.readiness(() => (store.loaded ? undefined : 'no config loaded'));
    this.onStop('config source', () => source.stop());
    return store;
  }

  /** Runs the stop steps once, in order; a failed step is logged and the rest still run. */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#draining = true;
      this.logger.info({ steps: this.#steps.map((s) => s.what) }, 'draining');
      const failed: string[] = [];
      for (const step of this.#steps) {
        try {
          await step.run();
        } catch (error) {
          failed.push(step.what);
          this.logger.error({ err: error, step: step.what }, 'stop step failed');
        }
      }
      await new Promise<void>((resolve) => (this.#ops ? this.#ops.close(() => resolve()) : resolve()));
      this.logger.info(`${this.name} stopped`);
      if (failed.length) throw new Error(`stop steps failed: ${failed.join(', ')}`);
    })();
    return this.#stopping;
  }
}

/**
 * What every `mtrelay <role>` command does: a JSON logger, the role started by `start`, and
 * SIGTERM / Ctrl-C mapped to its orderly stop and the exit code. The handlers are in place
 * before anything starts: as PID 1 of a container, node ignores a signal it has no handler
 * for, and a role still waiting for Kafka must stop when asked (it has accepted nothing yet).
 */
export async function runRole(name: string, logLevel: string, start: (logger: Logger) => Promise<{ shutdown(): Promise<void> }>): Promise<void> {
  const logger = createLogger(name, logLevel);
  let running: { shutdown(): Promise<void> } | undefined;
  const stop = (signal: string) => {
    logger.info({ signal, started: Boolean(running) }, 'shutting down');
    if (!running) process.exit(0);
    running.shutdown().then(() => process.exit(0), (error: unknown) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  running = await start(logger);
}
