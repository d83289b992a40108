// SMTP load: a closed loop (N connections × M messages, as fast as the server answers), an
// open loop (messages due at a fixed rate, whatever the server does), and idle connections.
// Run directly for any SMTP server: node test/bench/load-generator.ts --port 2525 --no-auth
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseGeneratorFlags } from './bench-options.ts';
import { summarize, type LatencySummary } from './latency-stats.ts';
import { messageFactory, type MessageFactory } from './message.ts';
import { SmtpConnection, type SendResult, type SmtpTarget } from './smtp-connection.ts';

export interface LoadOptions {
  connections: number;
  /** Messages per worker (closed loop only). */
  messages: number;
  /** Messages sent on one connection before the worker quits and opens a new one (default: all of them; 1: a connection per message, as most applications send). */
  perConnection?: number;
  size: number;
  from: string;
  to: string;
  /** What the messages are (default: messageFactory's text and base64 newsletters). */
  factory?: MessageFactory;
  /** No new message starts after this long (replies still have their own timeout). */
  maxSeconds?: number;
  /** Called with each message the server answered 250, and performance.now() of that reply
   *  (the end-to-end benchmark times delivery from it). */
  onAccepted?: (message: Buffer, repliedAt: number) => void;
}

export interface LoadResult {
  attempted: number;
  /** Final 250 replies. */
  accepted: number;
  /** Any other decisive reply, by code. */
  refused: Record<string, number>;
  /** Connections or transactions that failed without a reply (timeouts, resets). */
  errors: number;
  firstError?: string;
  wallSeconds: number;
  /** Accepted messages per second of wall time. */
  rate: number;
  /** From writing the final dot to the final reply. */
  latency: LatencySummary;
  latencySamples: number[];
}

export interface OpenLoopResult extends LoadResult {
  targetRate: number;
  /** From the moment a message was due to its final reply: includes waiting for a free connection. */
  sojourn: LatencySummary;
}

class Tally {
  attempted = 0;
  accepted = 0;
  refused: Record<string, number> = {};
  errors = 0;
  firstError: string | undefined;
  latencies: number[] = [];

  add(result: SendResult): void {
    this.attempted += 1;
    if (result.code === 250) this.accepted += 1;
    else this.refused[result.code] = (this.refused[result.code] ?? 0) + 1;
    if (result.latencyMs !== undefined) this.latencies.push(result.latencyMs);
  }

  fail(error: unknown, transactions = 1): void {
    this.attempted += transactions;
    this.errors += transactions;
    this.firstError ??= (error as Error).message;
  }

  result(wallSeconds: number): LoadResult {
    return {
      attempted: this.attempted, accepted: this.accepted, refused: this.refused, errors: this.errors,
      ...(this.firstError ? { firstError: this.firstError } : {}),
      wallSeconds, rate: this.accepted / wallSeconds, latency: summarize(this.latencies), latencySamples: this.latencies,
    };
  }
}

async function open(target: SmtpTarget): Promise<SmtpConnection> {
  const connection = await SmtpConnection.connect(target);
  try {
    await connection.handshake(target);
  } catch (error) {
    connection.destroy();
    throw error;
  }
  return connection;
}

/** N workers, each connecting (EHLO, STARTTLS, AUTH as asked) and sending M messages one
 *  transaction at a time, on a new connection every `perConnection` messages. Wall time covers
 *  everything from the first connect to the last QUIT. */
export async function runClosedLoop(target: SmtpTarget, options: LoadOptions): Promise<LoadResult> {
  const tally = new Tally();
  const nextMessage = (options.factory ?? messageFactory)(options.size, options.from, options.to);
  const perConnection = options.perConnection ?? options.messages;
  const started = performance.now();
  const stopAt = started + (options.maxSeconds ?? 120) * 1000;
  const worker = async () => {
    let connection: SmtpConnection | undefined;
    for (let i = 0; i < options.messages; i++) {
      if (performance.now() > stopAt) {
        tally.fail(new Error('benchmark time limit reached'), options.messages - i);
        break;
      }
      try {
        if (i % perConnection === 0) {
          await connection?.quit();
          connection = await open(target);
        }
        const message = nextMessage();
        const result = await connection!.send(options.from, options.to, message);
        if (result.code === 250) options.onAccepted?.(message, performance.now());
        tally.add(result);
      } catch (error) {
        tally.fail(error, options.messages - i);
        break;
      }
    }
    await connection?.quit();
  };
  await Promise.all(Array.from({ length: options.connections }, worker));
  return tally.result((performance.now() - started) / 1000);
}

/** Several runs as one: counts and wall times added, latency percentiles over all samples. */
export function mergeResults(results: LoadResult[]): LoadResult {
  const refused: Record<string, number> = {};
  for (const r of results) for (const [code, n] of Object.entries(r.refused)) refused[code] = (refused[code] ?? 0) + n;
  const sum = (pick: (r: LoadResult) => number) => results.reduce((total, r) => total + pick(r), 0);
  const samples = results.flatMap((r) => r.latencySamples);
  const firstError = results.find((r) => r.firstError)?.firstError;
  return {
    attempted: sum((r) => r.attempted), accepted: sum((r) => r.accepted), refused, errors: sum((r) => r.errors),
    ...(firstError ? { firstError } : {}), wallSeconds: sum((r) => r.wallSeconds), rate: sum((r) => r.accepted) / sum((r) => r.wallSeconds),
    latency: summarize(samples), latencySamples: samples,
  };
}

/** A queue of due times that workers take from; take() waits while it is empty and open. */
class DueQueue {
  readonly items: number[] = [];
  #takers: ((due: number | undefined) => void)[] = [];
  #closed = false;

  push(due: number): void {
    const taker = this.#takers.shift();
    if (taker) taker(due);
    else this.items.push(due);
  }

  take(): Promise<number | undefined> {
    if (this.items.length) return Promise.resolve(this.items.shift());
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#takers.push(resolve));
  }

  close(): void {
    this.#closed = true;
    for (const taker of this.#takers.splice(0)) taker(undefined);
  }
}

/** Messages fall due at `rate` per second for `seconds`; each goes out on the first free one
 *  of the already-open connections. The schedule does not slow down when the server does. */
export async function runOpenLoop(target: SmtpTarget, options: LoadOptions & { rate: number; seconds: number }): Promise<OpenLoopResult> {
  const tally = new Tally();
  const sojourns: number[] = [];
  const nextMessage = (options.factory ?? messageFactory)(options.size, options.from, options.to);
  const opened = await Promise.allSettled(Array.from({ length: options.connections }, () => open(target)));
  const pool = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  for (const o of opened) {
    if (o.status === 'rejected') {
      tally.errors += 1; // a connection that never opened: no transaction lost, but say so
      tally.firstError ??= (o.reason as Error).message;
    }
  }
  const queue = new DueQueue();
  const worker = async (connection: SmtpConnection) => {
    for (let due = await queue.take(); due !== undefined; due = await queue.take()) {
      try {
        const message = nextMessage();
        const result = await connection.send(options.from, options.to, message);
        if (result.code === 250) options.onAccepted?.(message, performance.now());
        tally.add(result);
        sojourns.push(performance.now() - due);
      } catch (error) {
        tally.fail(error);
        return; // this connection is broken; the others carry on
      }
    }
    await connection.quit();
  };
  const workers = Promise.all(pool.map(worker));
  const total = Math.round(options.rate * options.seconds);
  const started = performance.now();
  for (let scheduled = 0; scheduled < total;) {
    const due = started + (scheduled * 1000) / options.rate;
    const now = performance.now();
    if (due <= now) {
      queue.push(due);
      scheduled += 1;
    } else {
      await new Promise((resolve) => setTimeout(resolve, due - now));
    }
  }
  queue.close();
  await workers;
  // Whatever no live connection was left to take counts as failed.
  if (queue.items.length) tally.fail(new Error('no connection left to send on'), queue.items.length);
  return { ...tally.result((performance.now() - started) / 1000), targetRate: options.rate, sojourn: summarize(sojourns) };
}

export interface IdleConnections {
  opened: number;
  failed: number;
  firstError?: string;
  close(): Promise<void>;
}

/** Opens `count` connections that read the greeting, send EHLO, and then stay idle. */
export async function openIdleConnections(target: SmtpTarget, count: number, parallel = 200): Promise<IdleConnections> {
  const connections: SmtpConnection[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const opener = async () => {
    while (next < count) {
      next += 1;
      try {
        connections.push(await open({ host: target.host, port: target.port }));
      } catch (error) {
        failed += 1;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, opener));
  return {
    opened: connections.length,
    failed,
    ...(firstError ? { firstError } : {}),
    close: async () => {
      for (const connection of connections) connection.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
    },
  };
}

/** One line for the console. */
export function describeResult(result: LoadResult): string {
  const refused = Object.entries(result.refused).map(([code, n]) => `${code}×${n}`).join(' ') || 'none';
  return `${result.accepted}/${result.attempted} accepted (refused: ${refused}, errors: ${result.errors}` +
    `${result.firstError ? `, first: ${result.firstError}` : ''}) in ${result.wallSeconds.toFixed(2)} s = ` +
    `${result.rate.toFixed(0)} msgs/s; reply latency p50 ${result.latency.p50.toFixed(1)} ms, p99 ${result.latency.p99.toFixed(1)} ms`;
}

async function main(): Promise<void> {
  const flags = parseGeneratorFlags(process.argv.slice(2));
  const target: SmtpTarget = {
    host: flags.host, port: flags.port,
    ...(flags.auth ? { auth: { user: flags.user, password: flags.password } } : {}),
    ...(flags.starttls ? { starttls: { ca: readFileSync(flags.ca!), servername: flags.servername } } : {}),
  };
  const load = { connections: flags.connections, messages: flags.messages, size: flags.size, from: flags.from, to: flags.to,
    ...(flags.perConnection ? { perConnection: flags.perConnection } : {}) };
  if (flags.mode === 'open') {
    const rate = flags.rate ?? 1; // parseGeneratorFlags insists on --rate in open mode
    const result = await runOpenLoop(target, { ...load, rate, seconds: flags.seconds });
    process.stdout.write(`open loop at ${rate} msgs/s: ${describeResult(result)}; due → reply p99 ${result.sojourn.p99.toFixed(1)} ms\n`);
  } else if (flags.mode === 'idle') {
    const idle = await openIdleConnections(target, flags.idle);
    process.stdout.write(`${idle.opened} idle connections open (${idle.failed} failed${idle.firstError ? `: ${idle.firstError}` : ''}); holding ${flags.seconds} s\n`);
    await new Promise((resolve) => setTimeout(resolve, flags.seconds * 1000));
    await idle.close();
  } else {
    process.stdout.write(`closed loop: ${describeResult(await runClosedLoop(target, load))}\n`);
  }
}

if (import.meta.main) {
  main().catch((error: Error) => {
    process.stderr.write(`load-generator: ${error.message}\n`);
    process.exit(1);
  });
}
