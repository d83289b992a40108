// The tracker benchmark's load generator: a child process of its own, so that it can be pinned
// to a core apart from the tracker's (`taskset -c 1`), driven over the IPC channel one phase at a
// time. It keeps its keep-alive connections (node:http Agent) and its JIT between phases.
// A phase is a closed loop (C requests in flight, as fast as the tracker answers), or a fixed
// rate (requests fall due on a schedule whatever the tracker does), bounded by a count and a
// time, over the signed click (`/c/<token>`) or pixel (`/o/<token>.gif`) tokens it was given.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { percentile } from './latency-stats.ts';

export type PhaseKind = 'click' | 'open' | 'mixed';

export interface PhaseRequest {
  kind: PhaseKind;
  concurrency: number;
  /** At most this many requests… */
  requests: number;
  /** …and none started after this many seconds. */
  seconds: number;
  /** Requests per second on a schedule; absent: a closed loop. */
  rate?: number;
}

export interface PhaseResult {
  kind: PhaseKind;
  sent: number;
  /** Answers as expected: 302 with a Location for a click, 200 image/gif for a pixel. */
  clicks: number;
  pixels: number;
  /** Any other status, by code. */
  unexpected: Record<string, number>;
  errors: number;
  firstError?: string;
  wallSeconds: number;
  /** From writing the request to the end of the response, milliseconds. */
  latency: { p50: number; p90: number; p99: number; max: number };
  /** This process's own CPU over the phase: near wallSeconds, the load generator was the limit. */
  cpuSeconds: number;
}

/** Browsers of readers, in turn: no request is flagged as a machine's. */
const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0',
];

class Load {
  readonly #agent: http.Agent;
  readonly #host: string;
  readonly #port: number;
  readonly #paths: Record<'click' | 'open', string[]>;
  #next = 0;

  constructor(base: URL, tokens: { clicks: string[]; pixels: string[] }, concurrency: number) {
    this.#host = base.hostname;
    this.#port = Number(base.port);
    this.#paths = { click: tokens.clicks.map((t) => `/c/${t}`), open: tokens.pixels.map((t) => `/o/${t}.gif`) };
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  }

  /** The next request of a phase: tokens taken in turn; a mixed phase alternates clicks and pixels. */
  #pick(kind: PhaseKind): { kind: 'click' | 'open'; path: string } {
    const n = this.#next++;
    const which = kind === 'mixed' ? (n % 2 ? 'open' : 'click') : kind;
    const paths = this.#paths[which];
    return { kind: which, path: paths[Math.floor(n / (kind === 'mixed' ? 2 : 1)) % paths.length]! };
  }

  /** One GET; resolves with whether the answer was the expected one, and its status. */
  #get(kind: 'click' | 'open', path: string, userAgent: string): Promise<{ ok: boolean; status: number }> {
    return new Promise((resolve, reject) => {
      const request = http.get({ agent: this.#agent, host: this.#host, port: this.#port, path, headers: { 'user-agent': userAgent } }, (response) => {
        const status = response.statusCode ?? 0;
        const ok = kind === 'click' ? status === 302 && !!response.headers.location : status === 200 && response.headers['content-type'] === 'image/gif';
        response.resume();
        response.once('end', () => resolve({ ok, status }));
        response.once('error', reject);
      });
      request.once('error', reject);
      request.setTimeout(10_000, () => request.destroy(new Error('no answer within 10 s')));
    });
  }

  async run(phase: PhaseRequest): Promise<PhaseResult> {
    const latencies: number[] = [];
    const result: PhaseResult = {
      kind: phase.kind, sent: 0, clicks: 0, pixels: 0, unexpected: {}, errors: 0, wallSeconds: 0, latency: { p50: 0, p90: 0, p99: 0, max: 0 }, cpuSeconds: 0,
    };
    const cpu = process.cpuUsage();
    const started = performance.now();
    const stopAt = started + phase.seconds * 1000;
    const one = async () => {
      const { kind, path } = this.#pick(phase.kind);
      result.sent += 1;
      const sentAt = performance.now();
      try {
        const { ok, status } = await this.#get(kind, path, USER_AGENTS[result.sent % USER_AGENTS.length]!);
        latencies.push(performance.now() - sentAt);
        if (!ok) result.unexpected[status] = (result.unexpected[status] ?? 0) + 1;
        else if (kind === 'click') result.clicks += 1;
        else result.pixels += 1;
      } catch (error) {
        result.errors += 1;
        result.firstError ??= (error as Error).message;
      }
    };
    const more = () => result.sent < phase.requests && performance.now() < stopAt;
    if (phase.rate) await this.#paced(phase.rate, phase.concurrency, more, one, started);
    else await Promise.all(Array.from({ length: phase.concurrency }, async () => { while (more()) await one(); }));
    result.wallSeconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    result.cpuSeconds = (used.user + used.system) / 1e6;
    latencies.sort((a, b) => a - b);
    result.latency = { p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: latencies.at(-1) ?? Number.NaN };
    return result;
  }

  /** Starts a request each time one falls due (at `rate` a second), at most `concurrency` at once. */
  async #paced(rate: number, concurrency: number, more: () => boolean, one: () => Promise<void>, started: number): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    for (let due = 0; more(); due += 1) {
      const wait = started + (due * 1000) / rate - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      // Past the connection limit the request waits for a free one, as a client of a slow server would.
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
      const request = one().finally(() => inFlight.delete(request));
      inFlight.add(request);
    }
    await Promise.all(inFlight);
  }
}

// argv: the tracker's base URL, the tokens file (JSON: { clicks, pixels }), the largest concurrency of any phase.
if (import.meta.main) {
  const [base, tokensFile, concurrency] = process.argv.slice(2);
  const load = new Load(new URL(base!), JSON.parse(readFileSync(tokensFile!, 'utf8')) as { clicks: string[]; pixels: string[] }, Number(concurrency));
  process.on('message', (phase: PhaseRequest | 'exit') => {
    if (phase === 'exit') process.exit(0);
    void load.run(phase).then((result) => process.send!(result));
  });
  process.send!('ready');
}
