// `npm run bench:relay`: the same SMTP load against mtrelay (backed by a real Kafka broker this
// script starts) and against a private Postfix, on loopback, in one run. Prints accepted
// msgs/s, reply latency, CPU per 1000 messages and peak memory of each; the latency at half
// the peak rate; the memory an idle connection costs the relay; and a Markdown summary that
// is also written to .cache/bench-results/. Everything it starts, it stops and removes.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { createTestCa } from '../helpers/tls.ts';
import { KafkaBroker, repoRoot } from '../kafka/broker.ts';
import { KafkaCluster } from '../kafka/kafka-cluster.ts';
import { ensureSystemTools } from '../system-deps.ts';
import { BENCH_USAGE, parseBenchFlags, type BenchFlags, type Shape } from './bench-options.ts';
import { idleConnectionsAllowed, rerunWithHigherFdLimit } from './fd-limit.ts';
import { describeResult, openIdleConnections, runOpenLoop, type LoadOptions } from './load-generator.ts';
import { machine } from './machine.ts';
import { measureRun, type Server } from './measure.ts';
import { PostfixInstance } from './postfix-instance.ts';
import { rssKb } from './proc-stats.ts';
import { UsageMeter } from './process-usage.ts';
import { fixed, idleKbPerConnection, renderSummary, writeSummary, type Ratio, type RunRow, type Summary } from './report.ts';
import { RunControl } from './run-control.ts';
import { TlsSessionCache, type SmtpTarget } from './smtp-connection.ts';

const HOST = '127.0.0.1';
const cache = path.join(repoRoot, '.cache');
const dirs = {
  kafka: path.join(cache, 'bench-kafka'),
  run: path.join(cache, 'bench-run'), // the account manifests and the test CA
  postfix: path.join(cache, 'bench-postfix'),
  results: path.join(cache, 'bench-results'),
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// Whatever was started is stopped in reverse order, on success, failure, Ctrl-C or timeout.
const run = new RunControl('bench:relay');
const progress = (message: string) => run.progress(message);

async function startRelay(resources: string, kafka: string, extra: { tls?: { cert: string; key: string }; args: string[] }): Promise<RelayProcess> {
  const relay = await RelayProcess.start({ resources, kafka, ...(extra.tls ? { tls: extra.tls } : {}), args: ['--max-clients', '20000', '--partitions', '3', ...extra.args] });
  run.defer(() => relay.stop());
  return relay;
}

/** The two ways applications send: many messages per session, or a connection per message (PHP mail() bridges, Django, cron jobs). */
const SHAPES: Record<Shape, { label: string; perConnection?: number }> = {
  long: { label: 'long sessions' },
  single: { label: 'a connection per message', perConnection: 1 },
};

async function bench(flags: BenchFlags): Promise<Summary> {
  ensureSystemTools(['swaks', 'openssl', 'java', 'maven', ...(flags.postfix ? ['postfix' as const] : [])]);
  const base: LoadOptions = { connections: flags.connections, messages: flags.messages, size: flags.size, from: 'sender@example.com', to: 'someone@recipient.test' };
  const loadOf = (shape: Shape): LoadOptions => ({ ...base, ...(SHAPES[shape].perConnection ? { perConnection: SHAPES[shape].perConnection } : {}) });
  const rows: RunRow[] = [];
  const notes: string[] = [];
  const ratios: Ratio[] = [];
  const summary: Summary = {
    startedAt: new Date(), machine: machine(), rows, notes, ratios,
    load: `${flags.rounds} rounds of ${base.connections} clients × ${base.messages} messages × ${base.size} bytes per run, one ` +
      'transaction at a time per client (MAIL, RCPT, DATA pipelined), after an uncounted warm-up round of the same load; ' +
      `shapes: ${flags.shapes.map((s) => SHAPES[s].label).join(', ')}; Kafka: ${flags.brokers === 3 ? 'three KRaft nodes, replication factor 3' : 'one broker'}`,
  };

  for (const dir of [dirs.kafka, dirs.run]) rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(dirs.run, 'ca'), { recursive: true });
  mkdirSync(path.join(dirs.run, 'resources'), { recursive: true });
  run.defer(() => rmSync(dirs.run, { recursive: true, force: true }));
  // One broker (one replica), or the production shape: three KRaft nodes, replication 3, min.insync.replicas 2.
  progress(flags.brokers === 3 ? 'starting a three-node Kafka cluster' : 'starting the Kafka broker');
  const kafka = flags.brokers === 3 ? await KafkaCluster.start(dirs.kafka) : new KafkaBroker({ dir: dirs.kafka });
  run.defer(async () => {
    await kafka.stop();
    rmSync(dirs.kafka, { recursive: true, force: true });
  });
  if (kafka instanceof KafkaBroker) await kafka.start();
  const brokerPids = () => (kafka instanceof KafkaBroker ? [kafka.pid!] : kafka.nodes.map((n) => n.pid!));
  const replication = flags.brokers === 3 ? ['--replication-factor', '3'] : [];

  const key = newApiKey();
  const resources = accountFolder(key, path.join(dirs.run, 'resources')).dir;
  const ca = createTestCa(path.join(dirs.run, 'ca'));
  const cert = ca.issue('relay', ['localhost', '127.0.0.1']);
  const auth = flags.auth ? { auth: { user: 'smtp_mt_injection', password: key } } : {};
  const starttls = (sessions?: TlsSessionCache) => ({ starttls: { ca: readFileSync(ca.caCert), servername: 'localhost', ...(sessions ? { sessions } : {}) } });
  /** A STARTTLS run whose clients resume sessions (as clients with a session cache do); the share is noted. */
  const resumingRun = async (name: string, server: Server, target: SmtpTarget, load: LoadOptions) => {
    const sessions = new TlsSessionCache();
    const row = await measureRun(name, server, { ...target, ...starttls(sessions) }, load, flags.rounds);
    row.resumedShare = sessions.resumedShare;
    return row;
  };

  // 1. mtrelay, each shape: AUTH without TLS (compared with Postfix); STARTTLS + AUTH with
  //    session resumption; and for a connection per message, STARTTLS with full handshakes only.
  const relay = await startRelay(resources, kafka.bootstrap, { tls: cert, args: ['--allow-auth-without-tls', ...replication] });
  const relayServer: Server = { pid: relay.child.pid!, withChildren: false, sidecarPids: brokerPids() };
  const plain: SmtpTarget = { host: HOST, port: relay.ports.submission, ...auth };
  const relayRows: Partial<Record<Shape, { plain: RunRow; tls: RunRow }>> = {};
  for (const shape of flags.shapes) {
    const { label } = SHAPES[shape];
    progress(`mtrelay (AUTH, no TLS), ${label}: closed loop`);
    const plainRow = await measureRun(`mtrelay, AUTH PLAIN, no TLS, ${label}`, relayServer, plain, loadOf(shape), flags.rounds);
    rows.push(plainRow);
    progress(`  ${describeResult(plainRow.load)}`);
    if (!flags.starttls) continue;
    progress(`mtrelay (STARTTLS + AUTH), ${label}: closed loop`);
    const tlsRow = await resumingRun(`mtrelay, STARTTLS + AUTH PLAIN, ${label}`, relayServer, plain, loadOf(shape));
    rows.push(tlsRow);
    progress(`  ${describeResult(tlsRow.load)}; ${fixed((tlsRow.resumedShare ?? 0) * 100, 0)}% of TLS sessions resumed`);
    relayRows[shape] = { plain: plainRow, tls: tlsRow };
    if (shape === 'single') {
      progress(`mtrelay (STARTTLS + AUTH, full handshakes only), ${label}: closed loop`);
      const full = await measureRun(`mtrelay, STARTTLS + AUTH PLAIN, ${label}, no session resumption`, relayServer, { ...plain, ...starttls() }, loadOf(shape), flags.rounds);
      rows.push(full);
      progress(`  ${describeResult(full.load)}`);
    }
  }
  const peak = rows[0]!;

  // 2. Open loop at half the peak rate (or --rate): latency when the relay is not saturated.
  const rate = flags.rate ?? peak.load.rate / 2;
  progress(`mtrelay: open loop at ${rate.toFixed(0)} msgs/s for ${flags.seconds} s`);
  const openMeter = new UsageMeter(relayServer.pid, false).start();
  const open = await runOpenLoop(plain, { ...base, rate, seconds: flags.seconds });
  summary.openLoop = { result: open, usage: openMeter.stop(), peakRate: peak.load.rate };
  progress(`  ${describeResult(open)}`);

  await relay.stop();

  // 3. Idle connections: RSS of a fresh relay before and after K sessions that only said EHLO.
  // Fresh, because heap left free by the load runs would absorb the new objects and hide their cost.
  const allowed = idleConnectionsAllowed(flags.idle);
  if (allowed.count > 0) {
    progress(`mtrelay (fresh process): ${allowed.count} idle connections`);
    // All from one address: the per-address limit is lifted, as it measures memory, not fairness.
    const idleRelay = await startRelay(resources, kafka.bootstrap, { args: ['--allow-auth-without-tls', '--max-connections-per-address', '0', ...replication] });
    const idlePid = idleRelay.child.pid!;
    const heapUsed = () => idleRelay.metric('mtrelay_nodejs_heap_size_used_bytes');
    await sleep(3000); // past start-up work (config load, Kafka metadata)
    const rssBeforeKb = rssKb(idlePid);
    const heapBefore = await heapUsed();
    const idle = await openIdleConnections({ host: HOST, port: idleRelay.ports.submission }, allowed.count);
    await sleep(3000);
    const rssAfterKb = rssKb(idlePid);
    const heapAfter = await heapUsed();
    const seen = await idleRelay.metric('mtrelay_relay_open_connections', { listener: 'submission' });
    await idle.close();
    await idleRelay.stop();
    const heapNote = idle.opened > 0 ? `V8 heap used grew ${((heapAfter - heapBefore) / 1024 / idle.opened).toFixed(1)} KiB per connection.` : undefined;
    const failure = idle.firstError ? `First failure: ${idle.firstError}.` : undefined;
    const note = [heapNote, allowed.note, failure].filter(Boolean).join(' ');
    summary.idle = {
      requested: flags.idle, opened: idle.opened, failed: idle.failed, rssBeforeKb, rssAfterKb, ...(note ? { note } : {}),
    };
    progress(`  ${idle.opened} open (the relay counted ${seen}), ${idleKbPerConnection(summary.idle).toFixed(1)} KiB RSS each; ${heapNote ?? ''}`);
  }
  // The broker is not needed any more: stop it so Postfix has the machine to itself.
  await kafka.stop();

  // 4. Postfix smtpd: the same loads, no AUTH (mynetworks), STARTTLS offered, disk queue, discard transport.
  if (flags.postfix) {
    const postfix = await PostfixInstance.start(dirs.postfix, { tls: cert });
    run.defer(() => postfix.stop());
    const postfixServer: Server = { pid: postfix.masterPid, withChildren: true, settle: () => postfix.drained() };
    const target: SmtpTarget = { host: HOST, port: postfix.port };
    for (const shape of flags.shapes) {
      const { label } = SHAPES[shape];
      progress(`Postfix (no AUTH, no TLS), ${label}: closed loop`);
      const plainRow = await measureRun(`Postfix smtpd, no AUTH, no TLS, ${label}`, postfixServer, target, loadOf(shape), flags.rounds);
      rows.push(plainRow);
      progress(`  ${describeResult(plainRow.load)}`);
      const relayPair = relayRows[shape];
      const relayPlain = rows.find((r) => r.name === `mtrelay, AUTH PLAIN, no TLS, ${label}`);
      if (relayPlain) ratios.push({ label: `${label}, no TLS`, relay: relayPlain, postfix: plainRow, ...(shape === 'single' ? { goal: 1.5 } : {}) });
      if (!flags.starttls) continue;
      progress(`Postfix (STARTTLS, no AUTH), ${label}: closed loop`);
      const tlsRow = await resumingRun(`Postfix smtpd, STARTTLS, no AUTH, ${label}`, postfixServer, target, loadOf(shape));
      rows.push(tlsRow);
      progress(`  ${describeResult(tlsRow.load)}; ${fixed((tlsRow.resumedShare ?? 0) * 100, 0)}% of TLS sessions resumed`);
      if (relayPair) ratios.push({ label: `${label}, STARTTLS`, relay: relayPair.tls, postfix: tlsRow, ...(shape === 'single' ? { goal: 1.0 } : {}) });
    }
    notes.push(`Postfix's log shows ${postfix.sent()} messages (warm-up included) queued and then discarded; ${postfix.queued()} left in its queue.`);
    postfix.stop();
  }

  if (flags.postfix) {
    notes.push(
      'Postfix runs without AUTH: there is no SASL backend (Dovecot, Cyrus) on this machine, so loopback clients are trusted ' +
        'through mynetworks = 127.0.0.0/8. mtrelay always requires AUTH; the ratios compare mtrelay with AUTH PLAIN against ' +
        'Postfix without AUTH, without TLS and with STARTTLS (smtpd_tls_security_level = may, TLS 1.2+, the same RSA certificate, ' +
        'session tickets from tlsmgr).',
      'STARTTLS runs resume TLS sessions as a client with a session cache does: each connection offers the last session the server ' +
        'gave; the share resumed is shown. The "no session resumption" run offers none: every connection makes a full handshake.',
      'Postfix is a private instance (postfix -c .cache/bench-postfix/etc; /etc/postfix untouched) with its own disk queue; its cleanup ' +
        'process writes and fsyncs each message before the 250, then the discard transport drops it. Its CPU is the master plus all ' +
        'its children (smtpd, cleanup, qmgr, trivial-rewrite, discard, postlogd, …), including children that exited (through the ' +
        "master's cutime/cstime), from the first connect until its queue was empty.",
    );
  }
  notes.push(
    flags.brokers === 3
      ? 'mtrelay answers 250 only after the Kafka cluster acknowledged the record (acks=all): three KRaft nodes on this machine, replication ' +
        "factor 3, min.insync.replicas 2, so each record is on at least two brokers first. Brokers write to the page cache and do not fsync per message. The Kafka column sums the three brokers' CPU."
      : 'mtrelay answers 250 only after the Kafka broker acknowledged the record (acks=all; one broker, so one replica). The broker ' +
        "writes to the page cache and does not fsync per message. The broker's CPU is shown in its own column.",
    `Same machine, same run: the load generator, the relay, the Kafka broker (JVM) and Postfix share the ${os.availableParallelism()} CPUs, ` +
      'so these are comparisons on this machine, not capacity figures. At the peak the CPUs are saturated: the load generator\'s own ' +
      'CPU (its column; it also reads the relay\'s log) is taken from the server under test.',
    'msgs/s counts 250 replies over the wall time of the whole run, including each connection\'s connect, EHLO, STARTTLS/AUTH and QUIT. ' +
      'Reply latency runs from writing the final dot to the final reply.',
    'Idle-connection memory is measured on a fresh relay process (after the load runs, heap they left free would absorb the new ' +
      'objects and hide their cost); RSS does not include the kernel\'s socket buffers.',
    'Peak RSS is VmHWM (for Postfix, summed over its processes, which counts shared libraries once per process); PSS is sampled every ' +
      '250 ms and splits shared pages between the processes that share them.',
  );
  return summary;
}

const flags = run.flags(parseBenchFlags, BENCH_USAGE);
const rerunCode = await rerunWithHigherFdLimit(flags.idle + 1000);
if (rerunCode !== undefined) process.exit(rerunCode);

await run.measure(40 * 60_000, () => bench(flags), (summary) => {
  const markdown = renderSummary(summary);
  return { markdown, file: writeSummary(dirs.results, summary, markdown) };
});
