// The three systems the end-to-end benchmark compares, each started fresh, fed over SMTP on
// loopback and delivering every message to the benchmark's sink: mtrelay's relay and deliverer
// around a Kafka broker, mtrelay standalone around its SQLite queue, and Postfix relaying to
// the sink. Each registers its own clean-up with the run, so an abort stops it too.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DelivererProcess, MtrelayProcess, RelayProcess } from '../helpers/relay-process.ts';
import { KafkaBroker } from '../kafka/broker.ts';
import { OpenDkimInstance } from './opendkim-instance.ts';
import { PostfixInstance } from './postfix-instance.ts';
import type { RunControl } from './run-control.ts';
import type { SmtpTarget } from './smtp-connection.ts';

export interface SystemUnderTest {
  name: string;
  target: SmtpTarget;
  /** The processes whose CPU is the server's (Postfix: the master, counted with its children). */
  server: { label: string; pid: number; withChildren: boolean }[];
  /** The Kafka broker, whose CPU is reported on its own. */
  brokerPid?: number;
  /** Resolves once the server finished its own work on what it delivered (outcomes written, queue empty). */
  settle(): Promise<void>;
  /** What the server itself says it did (its counters or log), to check against the sink's count. */
  check(): Promise<string>;
  stop(): Promise<void>;
}

export interface SystemOptions {
  run: RunControl;
  /** A folder of its own (Kafka data, SQLite state, Postfix queue), removed when it stops. */
  dir: string;
  /** The account manifests (namespace acme, domain example.com, its DKIM key) and its API key. */
  account: { resources: string; key: string };
  /** The DKIM key every system signs with: mtrelay from the account's Secret, Postfix through OpenDKIM. */
  dkim: { domain: string; selector: string; privateKeyPem: string };
  sinkPort: number;
  /** Parallel SMTP connections to the sink. */
  outConnections: number;
  maxInFlight: number;
  /** Kafka mode's --kafka-compression. */
  kafkaCompression: string;
  /** The deliverer's tracking keys and URL. Whether a message is tracked is the account's
   *  choice (an AccountSettings manifest in its folder), so tracked and untracked runs differ
   *  in nothing else. */
  tracking?: { keysFile: string; url: string };
  /** Appended to the system's name: which variant of a run this is. */
  variant?: string;
  /** The retry ladder of mtrelay (default 1s: nothing should be retried). */
  retryDelays?: string;
  /** More flags for mtrelay's deliverer (standalone's too), e.g. --shaping-rules. */
  deliveryArgs?: string[];
  /** More main.cf lines for Postfix. */
  postfixLines?: string[];
}

const HOST = '127.0.0.1';

/** The deliverer's settings, the same in Kafka and standalone mode: every domain to the sink. */
function deliveryFlags(o: SystemOptions): string[] {
  return [
    '--route', `*=${HOST}:${o.sinkPort}`, '--tls-policy', '*=opportunistic',
    '--connections-per-destination', String(o.outConnections), '--max-in-flight', String(o.maxInFlight),
    // Nothing should be retried; if something is, it comes back within the run.
    '--retry-delays', o.retryDelays ?? '1s',
    ...(o.tracking ? ['--tracking-keys', o.tracking.keysFile, '--tracking-url', o.tracking.url] : []),
    ...(o.deliveryArgs ?? []),
  ];
}

const named = (name: string, o: SystemOptions) => (o.variant ? `${name}, ${o.variant}` : name);

/** SIGTERM (the process drains), then SIGKILL if it is still there after `graceMs`. */
async function stopProcess(p: MtrelayProcess, graceMs = 15_000): Promise<void> {
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.stop();
  clearTimeout(timer);
}

/** Waits until the deliverer has no record in flight: every outcome is written (Kafka or SQLite). */
async function deliveriesFinished(p: MtrelayProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await p.metric('mtrelay_deliverer_in_flight')) > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The deliverer's own count of outcomes, warm-up included. */
async function delivererCheck(p: MtrelayProcess): Promise<string> {
  const outcome = (type: string) => p.metric('mtrelay_deliverer_outcomes_total', { type });
  return `its deliverer counted ${await outcome('delivery')} deliveries, ${await outcome('delay')} delays and ${await outcome('bounce')} bounces ` +
    '(warm-up included)';
}

const auth = (o: SystemOptions) => ({ auth: { user: 'smtp_mt_injection', password: o.account.key } });

/** A fresh Kafka broker, then `mtrelay relay` and `mtrelay deliverer` sharing its topics. */
export async function startKafkaMode(o: SystemOptions): Promise<SystemUnderTest> {
  rmSync(o.dir, { recursive: true, force: true });
  const broker = new KafkaBroker({ dir: o.dir });
  const removeBroker = async () => {
    await broker.stop();
    rmSync(o.dir, { recursive: true, force: true });
  };
  o.run.defer(removeBroker);
  o.run.progress('starting a Kafka broker');
  await broker.start();
  const prefix = `e2e${Date.now()}`;
  // One broker, so one replica per partition (said outright rather than left to the broker's default).
  const topics = ['--topic-prefix', prefix, '--partitions', '3', '--replication-factor', '1', '--retry-delays', o.retryDelays ?? '1s', '--kafka-compression', o.kafkaCompression];
  const relay = await RelayProcess.start({
    resources: o.account.resources, kafka: broker.bootstrap, args: ['--allow-auth-without-tls', '--max-clients', '20000', ...topics],
  });
  o.run.defer(() => stopProcess(relay));
  const deliverer = await DelivererProcess.start({
    resources: o.account.resources, kafka: broker.bootstrap, args: [...topics, '--group-id', `g-${prefix}`, ...deliveryFlags(o)],
  });
  o.run.defer(() => stopProcess(deliverer));
  return {
    name: named('mtrelay relay + deliverer + Kafka', o),
    target: { host: HOST, port: relay.ports.submission, ...auth(o) },
    server: [{ label: 'relay', pid: relay.child.pid!, withChildren: false }, { label: 'deliverer', pid: deliverer.child.pid!, withChildren: false }],
    brokerPid: broker.pid!,
    settle: () => deliveriesFinished(deliverer),
    check: () => delivererCheck(deliverer),
    async stop() {
      await Promise.all([stopProcess(relay), stopProcess(deliverer)]);
      await removeBroker();
    },
  };
}

/** `mtrelay standalone`: relay, SQLite queue and deliverer in one process. */
export async function startStandalone(o: SystemOptions): Promise<SystemUnderTest> {
  rmSync(o.dir, { recursive: true, force: true });
  mkdirSync(o.dir, { recursive: true });
  const standalone = new MtrelayProcess([
    'standalone', '--state', path.join(o.dir, 'state'), '--resources', o.account.resources, '--allow-auth-without-tls',
    '--host', HOST, '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--metrics-host', HOST, '--metrics-port', '0',
    // Its own tracker listens too: on any free port, not on 8080, which something else may hold.
    '--tracker-port', '0', '--api-port', '0', '--max-clients', '20000', '--drain-timeout', '5', ...deliveryFlags(o),
  ]);
  const remove = async () => {
    await stopProcess(standalone);
    rmSync(o.dir, { recursive: true, force: true });
  };
  o.run.defer(remove);
  const ready = await standalone.started('standalone listening');
  standalone.metricsPort = ready.metricsPort as number;
  await standalone.waitUntilReady();
  return {
    name: named('mtrelay standalone (SQLite queue)', o),
    target: { host: HOST, port: (ready.ports as { submission: number }).submission, ...auth(o) },
    server: [{ label: 'standalone', pid: standalone.child.pid!, withChildren: false }],
    settle: () => deliveriesFinished(standalone),
    check: () => delivererCheck(standalone),
    stop: remove,
  };
}

/** A private Postfix whose every accepted message is signed by OpenDKIM and relayed to the sink (no AUTH: no SASL here). */
export async function startPostfix(o: SystemOptions): Promise<SystemUnderTest> {
  const opendkim = await OpenDkimInstance.start(path.join(o.dir, '..', `${path.basename(o.dir)}-opendkim`), o.dkim);
  o.run.defer(() => opendkim.stop());
  const postfix = await PostfixInstance.start(o.dir, { relayPort: o.sinkPort, concurrency: o.outConnections, extra: [...opendkim.postfixLines, ...(o.postfixLines ?? [])] });
  o.run.defer(() => postfix.stop());
  return {
    name: 'Postfix + OpenDKIM, relayhost = the sink',
    target: { host: HOST, port: postfix.port },
    server: [{ label: 'Postfix', pid: postfix.masterPid, withChildren: true }, { label: 'OpenDKIM', pid: opendkim.pid, withChildren: false }],
    settle: () => postfix.drained(),
    check: async () => `its log shows ${postfix.sent()} deliveries with status=sent (warm-up included), and ${postfix.queued()} messages are left in its queue`,
    stop: async () => {
      postfix.stop();
      await opendkim.stop();
    },
  };
}
