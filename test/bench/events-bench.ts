// `npm run bench:events`: how fast the events stores take events and answer searches when they
// hold many. It fills standalone's SQLite store and the cluster's PostgreSQL store (a private
// PostgreSQL 15 server started here) with the same stream of events, in batches of the size
// the consumers write (as the API role and standalone insert them: parsed from JSON, one
// statement a batch), then runs the events API's searches against each (by recipient, by
// transmission (of events it stored), an account's newest page and the next page, by type and
// by campaign) and reports their latencies. Events span the last ten days, over 20 accounts (one has half of them) and a
// million recipients. Prints a Markdown summary and writes it to .cache/bench-results/.
// Everything it starts, it stops and removes.
//
//   npm run bench:events -- [--events 10000000] [--queries 300] [--batch 1000] [--stores sqlite,postgres]
import { mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { eventRow, type EventSearch } from '../../api/event-rows.ts';
import { parseEventQuery } from '../../api/events-query.ts';
import { PostgresEventStore } from '../../api/postgres-events.ts';
import { SqliteEventStore } from '../../standalone/sqlite-events.ts';
import { PostgresServer } from '../helpers/postgres.ts';
import { repoRoot } from '../kafka/broker.ts';
import { ensureSystemTools } from '../system-deps.ts';
import { summarize, type LatencySummary } from './latency-stats.ts';
import { machine } from './machine.ts';
import { writeMarkdown } from './report.ts';
import { RunControl } from './run-control.ts';

const USAGE = 'usage: npm run bench:events -- [--events N] [--queries N] [--batch N] [--stores sqlite,postgres]';
const DAY_MS = 24 * 3600 * 1000;
const ACCOUNTS = 20;
const RECIPIENTS = 1_000_000;
/** PostgreSQL settings for a server with memory to spare, as a production one would have. */
const POSTGRES_SETTINGS = { shared_buffers: "'2GB'", max_wal_size: "'8GB'", checkpoint_timeout: "'15min'", effective_cache_size: "'8GB'" };

const run = new RunControl('bench:events');
const dir = path.join(repoRoot, '.cache', 'bench-events');

interface Flags { events: number; queries: number; batch: number; stores: string[] }

function parseFlags(argv: string[]): Flags | undefined {
  const { values } = parseArgs({ args: argv, options: {
    events: { type: 'string', default: '10000000' }, queries: { type: 'string', default: '300' }, batch: { type: 'string', default: '1000' },
    stores: { type: 'string', default: 'sqlite,postgres' }, help: { type: 'boolean' },
  } });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const whole = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: a whole number above 0`);
    return n;
  };
  const stores = values.stores.split(',');
  if (stores.some((s) => s !== 'sqlite' && s !== 'postgres')) throw new Error('--stores: sqlite, postgres or both');
  return { events: whole('events', values.events), queries: whole('queries', values.queries), batch: whole('batch', values.batch), stores };
}

/** A small deterministic generator, so both stores get the same events. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

const TYPES: [string, number][] = [['injection', 0.4], ['delivery', 0.37], ['delay', 0.03], ['bounce', 0.02], ['initial_open', 0.06], ['open', 0.06], ['click', 0.05], ['spam_complaint', 0.01]];
const namespaceOf = (r: number) => (r < 0.5 ? 'acme' : `account${1 + Math.floor((r - 0.5) * 2 * (ACCOUNTS - 1))}`);
const recipientOf = (n: number) => `user${n}@domain${n % 1000}.test`;

/** A recipient and a transmission of some stored event, for searches that find something. */
interface Sample { ns: string; rcpt: string; transmission: string }

/**
 * The events, in batches of JSON lines as they are published: roughly in time order over the
 * last ten days. Every `sampleEvery`-th event's account, recipient and transmission go to `samples`.
 */
function* eventBatches(total: number, batch: number, end: number, samples: Sample[], sampleEvery: number): Generator<string[]> {
  const next = random(42);
  const start = end - 10 * DAY_MS + 60_000;
  let transmission = 0;
  let ns = 'acme';
  for (let i = 0; i < total; i += batch) {
    const lines: string[] = [];
    for (let j = i; j < Math.min(total, i + batch); j++) {
      // A transmission of four recipients' events, all of one account.
      if (j % 4 === 0) {
        transmission++;
        ns = namespaceOf(next());
      }
      let pick = next();
      const type = TYPES.find(([, share]) => (pick -= share) < 0)?.[0] ?? 'injection';
      const ts = new Date(start + Math.floor((j / total) * (10 * DAY_MS - 120_000))).toISOString();
      const rcpt = recipientOf(Math.floor(next() * RECIPIENTS));
      if (j % sampleEvery === 0) samples.push({ ns, rcpt, transmission: String(7_000_000_000_000 + transmission) });
      lines.push(JSON.stringify({
        type, event_id: `${j.toString(36)}-${Math.floor(next() * 2 ** 32).toString(16)}`, timestamp: ts, transmission_id: String(7_000_000_000_000 + transmission),
        message_id: `<${transmission}.${j}@mtrelay>`, namespace: ns, rcpt_to: rcpt, rcpt_type: 'to', friendly_from: 'news@shop.example',
        sending_domain: 'shop.example', subject: 'Your weekly picks', msg_size: 18_000 + (j % 5000), num_retries: 0, queue_time: 120, injection_time: ts,
        campaign_id: `weekly-${transmission % 50}`, tags: ['newsletter'], rcpt_meta: { customer: String(j % 100_000) },
        ...(type === 'delivery' ? { raw_reason: '250 2.0.0 OK 1764489600 a1si123.42 - gsmtp', mx_ip: '203.0.113.5', tls: true } : {}),
        ...(type === 'bounce' ? { bounce_class: 10, error_code: '550', raw_reason: '550 5.1.1 The email account that you tried to reach does not exist.' } : {}),
        ...(type === 'click' ? { target_link_url: 'https://shop.example/picks?utm_source=newsletter', user_agent: 'Mozilla/5.0' } : {}),
      }));
    }
    yield lines;
  }
}

interface Store extends EventSearch {
  name: string;
  insert(lines: string[]): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

async function sqliteStore(): Promise<Store> {
  const file = path.join(dir, 'events.db');
  const store = new SqliteEventStore(file, 30);
  return {
    name: 'SQLite (standalone)',
    insert: async (lines) => store.insert(lines),
    search: (ns, q) => store.search(ns, q),
    size: async () => ['', '-wal'].reduce((sum, s) => sum + (statSync(`${file}${s}`, { throwIfNoEntry: false })?.size ?? 0), 0),
    close: async () => store.close(),
  };
}

async function postgresStore(): Promise<Store> {
  const server = new PostgresServer({ settings: POSTGRES_SETTINGS });
  await server.start();
  run.defer(() => server.stop());
  const store = new PostgresEventStore({ url: server.url, retentionDays: 30, logger: pino({ level: 'silent' }) });
  await store.open();
  return {
    name: 'PostgreSQL 15 (cluster)',
    insert: async (lines) => {
      await store.insert(lines.map((l) => eventRow(l)!));
    },
    search: (ns, q) => store.search(ns, q),
    size: async () => {
      const client = await server.client();
      try {
        return Number((await client.query('SELECT pg_database_size(current_database()) AS n')).rows[0].n);
      } finally {
        await client.end();
      }
    },
    close: () => store.close(),
  };
}

interface IngestResult { events: number; seconds: number; perSecond: number; firstMillion: number; lastMillion: number; bytes: number }

async function ingest(store: Store, flags: Flags, end: number, samples: Sample[]): Promise<IngestResult> {
  const began = performance.now();
  let done = 0;
  let lastReport = began;
  const rates: { at: number; t: number }[] = [{ at: 0, t: began }];
  samples.length = 0;
  for (const lines of eventBatches(flags.events, flags.batch, end, samples, Math.max(1, Math.floor(flags.events / flags.queries)))) {
    await store.insert(lines);
    done += lines.length;
    if (done % 1_000_000 < flags.batch || done === flags.events) rates.push({ at: done, t: performance.now() });
    if (performance.now() - lastReport > 30_000) {
      lastReport = performance.now();
      run.progress(`${store.name}: ${done.toLocaleString('en')} events, ${Math.round(done / ((lastReport - began) / 1000)).toLocaleString('en')}/s`);
    }
  }
  const seconds = (performance.now() - began) / 1000;
  const rate = (a: { at: number; t: number }, b: { at: number; t: number }) => Math.round((b.at - a.at) / ((b.t - a.t) / 1000));
  return {
    events: done, seconds, perSecond: Math.round(done / seconds), bytes: await store.size(),
    firstMillion: rate(rates[0]!, rates[1] ?? rates.at(-1)!), lastMillion: rate(rates.at(-2) ?? rates[0]!, rates.at(-1)!),
  };
}

type Shape = { name: string; query: (next: () => number, sample: Sample) => { ns: string; params: string } };

const SHAPES: Shape[] = [
  { name: 'a recipient, last 10 days', query: (_, s) => ({ ns: s.ns, params: `recipients=${s.rcpt}&from=-10d` }) },
  { name: 'a transmission, last 10 days', query: (_, s) => ({ ns: s.ns, params: `transmissions=${s.transmission}&from=-10d` }) },
  { name: "an account's newest 100, last 24 h", query: (n) => ({ ns: n() < 0.5 ? 'acme' : namespaceOf(0.5 + n() / 2), params: 'per_page=100' }) },
  { name: 'bounces of an account, last 24 h, 100', query: (n) => ({ ns: n() < 0.5 ? 'acme' : namespaceOf(0.5 + n() / 2), params: 'events=bounce&per_page=100' }) },
  { name: 'a campaign, last 24 h, 100', query: (n) => ({ ns: 'acme', params: `campaigns=weekly-${Math.floor(n() * 50)}&per_page=100` }) },
];

async function searches(store: Store, flags: Flags, end: number, stored: Sample[]): Promise<{ shape: string; latency: LatencySummary; found: number }[]> {
  const out = [];
  for (const shape of [...SHAPES, { name: "page 2 of an account's newest 100 (cursor)", query: SHAPES[2]!.query }]) {
    const next = random(7);
    const samples: number[] = [];
    let found = 0;
    for (let i = 0; i < flags.queries; i++) {
      const { ns, params } = shape.query(next, stored[i % stored.length]!);
      const search = new URLSearchParams(params.replace('from=-10d', `from=${new Date(end - 10 * DAY_MS).toISOString()}`));
      let query = parseEventQuery(search, end);
      if (shape.name.startsWith('page 2')) {
        const first = await store.search(ns, query);
        if (!first.next) continue;
        search.set('cursor', first.next);
        query = parseEventQuery(search, end);
      }
      const began = performance.now();
      const page = await store.search(ns, query);
      samples.push(performance.now() - began);
      found += page.results.length;
    }
    out.push({ shape: shape.name, latency: summarize(samples), found: Math.round(found / Math.max(1, samples.length)) });
  }
  return out;
}

interface StoreResult { name: string; ingest: IngestResult; searches: Awaited<ReturnType<typeof searches>> }

function render(flags: Flags, results: StoreResult[], startedAt: Date): string {
  const n = (v: number) => v.toLocaleString('en');
  const lines = [`# bench:events, ${startedAt.toISOString()}`, '', ...machine().map((l) => `- ${l}`),
    `- PostgreSQL: ${Object.entries(POSTGRES_SETTINGS).map(([k, v]) => `${k}=${v.replaceAll("'", '')}`).join(', ')}; fsync and synchronous_commit on`,
    `- ${n(flags.events)} events over 10 days, ${ACCOUNTS} accounts (one with half), ${n(RECIPIENTS)} recipients; batches of ${n(flags.batch)}; ${flags.queries} searches of each shape`, '',
    '## Ingest', '', '| store | events | seconds | events/s | first million /s | last million /s | size on disk |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.name} | ${n(r.ingest.events)} | ${r.ingest.seconds.toFixed(0)} | ${n(r.ingest.perSecond)} | ${n(r.ingest.firstMillion)} | ${n(r.ingest.lastMillion)} | ${(r.ingest.bytes / 2 ** 30).toFixed(2)} GiB |`),
    '', '## Searches (ms)', '', `| search | ${results.map((r) => `${r.name} p50 | p99 | max`).join(' | ')} | events a page |`,
    `| --- | ${results.map(() => '---: | ---: | ---:').join(' | ')} | ---: |`,
    ...(results[0]?.searches ?? []).map((s, i) => `| ${s.shape} | ${results.map((r) => {
      const l = r.searches[i]!.latency;
      return `${l.p50.toFixed(1)} | ${l.p99.toFixed(1)} | ${l.max.toFixed(1)}`;
    }).join(' | ')} | ${s.found} |`),
  ];
  return `${lines.join('\n')}\n`;
}

const flags = run.flags(parseFlags, USAGE);
ensureSystemTools(flags.stores.includes('postgres') ? ['postgres'] : []);
const startedAt = new Date();
await run.measure(6 * 3600_000, async () => {
  const results: StoreResult[] = [];
  const end = Date.now();
  for (const which of flags.stores) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    run.defer(() => rmSync(dir, { recursive: true, force: true }));
    const store = which === 'sqlite' ? await sqliteStore() : await postgresStore();
    run.progress(`${store.name}: storing ${flags.events.toLocaleString('en')} events`);
    const samples: Sample[] = [];
    const ingested = await ingest(store, flags, end, samples);
    run.progress(`${store.name}: ${ingested.perSecond.toLocaleString('en')} events/s; searching`);
    results.push({ name: store.name, ingest: ingested, searches: await searches(store, flags, end, samples) });
    await store.close();
    await run.cleanUp();
  }
  return results;
}, (results) => {
  const markdown = render(flags, results, startedAt);
  return { markdown, file: writeMarkdown(path.join(repoRoot, '.cache', 'bench-results'), 'events', startedAt, markdown) };
});
