// Starts `mtrelay <role>` as a real child process on free ports and reads its JSON logs.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../kafka/broker.ts';

export interface LogLine {
  msg?: string;
  [key: string]: unknown;
}

/** Any `mtrelay <role>` child process: its JSON logs, its ops endpoint, its exit. */
export class MtrelayProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  metricsPort = 0;
  #waiters: { predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  /** `launcher` runs the CLI another way (e.g. bin/mtrelay of another copy); by default this checkout's cli.ts with this Node. */
  constructor(args: string[], env: Record<string, string> = {}, launcher: string[] = [process.execPath, path.join(repoRoot, 'cli.ts')]) {
    this.child = spawn(launcher[0]!, [...launcher.slice(1), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        parsed = { msg: line };
      }
      this.logs.push(parsed);
      this.#waiters = this.#waiters.filter((w) => (w.predicate(parsed) ? (w.resolve(parsed), false) : true));
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the log line `message`, or rejects when the process exits first. */
  started(message: string, timeoutMs = 60_000): Promise<LogLine> {
    return Promise.race([
      this.waitForLog((l) => l.msg === message, timeoutMs),
      this.exited.then((code): never => {
        throw new Error(`mtrelay exited with ${code}: ${this.stderr.join('\n')} ${JSON.stringify(this.logs)}`);
      }),
    ]);
  }

  waitForLog(predicate: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    const found = this.logs.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ predicate, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  }

  async http(pathname: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}${pathname}`);
    return { status: res.status, body: await res.text() };
  }

  async waitUntilReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.http('/readyz')).status !== 200) {
      if (Date.now() > deadline) throw new Error('not ready in time');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The value of one metric series from /metrics, or 0 when absent. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return metricValue((await this.http('/metrics')).body, name, labels);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export interface RelayProcessOptions {
  /** A folder of manifests; or give `--config-secret` in args. */
  resources?: string;
  kafka: string;
  tls?: { cert: string; key: string };
  args?: string[];
  env?: Record<string, string>;
}

export class RelayProcess extends MtrelayProcess {
  ports = { submission: 0, alt: 0, smtps: 0 };

  constructor(options: RelayProcessOptions) {
    super([
      'relay', ...(options.resources ? ['--resources', options.resources] : []), '--kafka', options.kafka,
      '--host', '127.0.0.1', '--port', '0', '--alt-port', '0', '--smtps-port', '0',
      '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--partitions', '2', '--kafka-timeout', '5000',
      '--drain-timeout', '10',
      // Failed AUTHs count across every relay on the broker, so one test's would block the next
      // test's client; tests of the throttle give their own limits (the last value wins).
      '--auth-slow-after', '1000', '--auth-block-after', '1000',
      ...(options.tls ? ['--tls-cert', options.tls.cert, '--tls-key', options.tls.key] : []),
      ...(options.args ?? []),
    ], options.env);
  }

  static async start(options: RelayProcessOptions): Promise<RelayProcess> {
    const relay = new RelayProcess(options);
    const ready = await relay.started('relay listening');
    relay.ports = ready.ports as RelayProcess['ports'];
    relay.metricsPort = ready.metricsPort as number;
    await relay.waitUntilReady();
    return relay;
  }
}

export class DelivererProcess extends MtrelayProcess {
  static async start(options: { resources?: string; kafka: string; args?: string[] }): Promise<DelivererProcess> {
    const deliverer = new DelivererProcess([
      'deliverer', ...(options.resources ? ['--resources', options.resources] : []), '--kafka', options.kafka,
      '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--partitions', '2', ...(options.args ?? []),
    ]);
    const ready = await deliverer.started('deliverer running');
    deliverer.metricsPort = ready.metricsPort as number;
    return deliverer;
  }
}

/** The value of the first series of `name` with these labels in a Prometheus text exposition; 0 when there is none. */
export function metricValue(body: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of body.split('\n')) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(' ');
    if (series === name || (series!.startsWith(`${name}{`) && want.every((w) => series!.includes(w)))) return Number(value);
  }
  return 0;
}
