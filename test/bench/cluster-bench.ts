// `npm run bench:cluster`: bench:e2e's load through the chart on a one-node cluster whose pods
// run (test/chart/release.ts): SMTP to the relay Service's NodePort on 127.0.0.1, kube-proxy's
// rules to the relay pod, Kafka (a broker on the pods' bridge), the deliverer pod, and a sink on
// the bridge. In the same run, unless --no-process, bench:e2e's Kafka mode (relay, deliverer and
// broker as processes on loopback) takes the same load, and the report puts the two rates side
// by side. Then each role's pod start → Ready, one rollout at a time. Writes the Markdown
// summary to .cache/bench-results/; everything it starts, it stops and removes.
import path from 'node:path';
import { ClusterRelease, RELEASE_NS, releaseDir, type PodTimes } from '../chart/release.ts';
import { ensureChartTools } from '../chart/tools.ts';
import { metricValue } from '../helpers/relay-process.ts';
import { ensureK8sTools, ensureNodeTools } from '../k8s/build-tools.ts';
import { BRIDGE_ADDRESS } from '../k8s/node.ts';
import { repoRoot } from '../kafka/broker.ts';
import { ensureSystemTools } from '../system-deps.ts';
import { benchAccount } from './bench-account.ts';
import { CLUSTER_USAGE, parseClusterFlags, type ClusterFlags } from './cluster-options.ts';
import { CountingSink } from './counting-sink.ts';
import { measureEndToEnd, type E2eRow, type Plan } from './e2e-measure.ts';
import { describeE2e } from './e2e-report.ts';
import { startKafkaMode, type SystemUnderTest } from './e2e-systems.ts';
import { machine } from './machine.ts';
import { messageFactory } from './message.ts';
import { fixed, perThousand, writeMarkdown } from './report.ts';
import { RunControl } from './run-control.ts';
import type { LoadOptions } from './load-generator.ts';

const cache = path.join(repoRoot, '.cache');
const dirs = { kafka: path.join(cache, 'bench-cluster-kafka'), account: path.join(cache, 'bench-cluster-account'), results: path.join(cache, 'bench-results') };
const run = new RunControl('bench:cluster');
const ROLES = ['relay', 'deliverer', 'operator'] as const;

interface ClusterSummary {
  startedAt: Date;
  flags: ClusterFlags;
  rows: E2eRow[];
  cluster?: E2eRow;
  process?: E2eRow;
  /** Pods as helm install started them, all at once. */
  atInstall: PodTimes[];
  /** One rollout restart per role, one after the other, on an idle cluster. */
  restarts: PodTimes[];
  timings: Record<string, number>;
}

function loadOf(flags: ClusterFlags, messages: number): LoadOptions {
  const connections = Math.min(flags.connections, messages);
  return { connections, messages: Math.ceil(messages / connections), size: flags.size, factory: messageFactory, from: 'sender@example.com', to: 'someone@recipient.test' };
}

function planOf(flags: ClusterFlags): Plan {
  return {
    load: loadOf(flags, flags.messages),
    ...(flags.warmup > 0 ? { warmup: loadOf(flags, flags.warmup) } : {}),
    ...(flags.rate > 0 ? { open: { rate: flags.rate, seconds: flags.seconds } } : {}),
    timeoutMs: flags.deliverTimeoutSeconds * 1000,
  };
}

/** A pod's /metrics, read from the host over the pods' bridge. */
async function podMetric(release: ClusterRelease, pod: string, port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const ip = release.json(['get', 'pod', pod, '-n', RELEASE_NS]).status.podIP as string;
  return metricValue(await (await fetch(`http://${ip}:${port}/metrics`)).text(), name, labels);
}

/** The release's relay and deliverer pods as a system under test: load to the NodePort, CPU and memory of their containers' processes. */
function clusterSystem(release: ClusterRelease, key: string): SystemUnderTest {
  const relays = release.pods('relay').filter((p) => p.ready).map((p) => p.name);
  const deliverers = release.pods('deliverer').filter((p) => p.ready).map((p) => p.name);
  const outcome = async (type: string) => {
    let sum = 0;
    for (const pod of deliverers) sum += await podMetric(release, pod, 9091, 'mtrelay_deliverer_outcomes_total', { type });
    return sum;
  };
  return {
    name: `mtrelay pods: NodePort → ${relays.length} relay, Kafka, ${deliverers.length} deliverer`,
    target: { host: '127.0.0.1', port: release.nodePort(), auth: { user: 'smtp_mt_injection', password: key } },
    server: [
      ...relays.map((pod, i) => ({ label: `relay pod${relays.length > 1 ? ` ${i + 1}` : ''}`, pid: release.containerPid(pod), withChildren: false })),
      ...deliverers.map((pod, i) => ({ label: `deliverer pod${deliverers.length > 1 ? ` ${i + 1}` : ''}`, pid: release.containerPid(pod), withChildren: false })),
    ],
    brokerPid: release.broker.pid!,
    async settle() {
      const deadline = Date.now() + 10_000;
      for (const pod of deliverers) {
        while ((await podMetric(release, pod, 9091, 'mtrelay_deliverer_in_flight')) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      }
    },
    check: async () => `its deliverer pods counted ${await outcome('delivery')} deliveries, ${await outcome('delay')} delays and ${await outcome('bounce')} bounces (warm-up included)`,
    stop: async () => undefined, // the cluster stops with the run
  };
}

/** A SendingDomain and an ApiKey through kubectl; resolves with the key once the relay accepts it. */
async function tenant(release: ClusterRelease): Promise<string> {
  release.kubectl(['create', 'namespace', 'acme']);
  release.kubectl(['apply', '-f', '-'], [
    'apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', 'metadata: {name: example-com, namespace: acme}', 'spec: {domain: example.com}',
    '---', 'apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', 'metadata: {name: bench, namespace: acme}', 'spec: {permissions: [smtp/send]}', '',
  ].join('\n'));
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const data = release.json(['get', 'secret', 'bench-apikey', '-n', 'acme']).data as Record<string, string>;
      const ready = release.json(['get', 'sendingdomain', 'example-com', '-n', 'acme']).status?.dnsRecords;
      if (data.apiKey && ready) return Buffer.from(data.apiKey, 'base64').toString();
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error('the operator did not make the API key and the DKIM key within 120 s');
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Restarts each role's Deployment in turn and reads its new pod's times. */
function restartTimes(release: ClusterRelease): PodTimes[] {
  return ROLES.map((role) => {
    const before = new Set(release.pods(role).map((p) => p.name));
    release.kubectl(['rollout', 'restart', `deployment/mtrelay-${role}`, '-n', RELEASE_NS]);
    release.kubectl(['rollout', 'status', `deployment/mtrelay-${role}`, '-n', RELEASE_NS, '--timeout', '180s']);
    const fresh = release.pods(role).filter((p) => p.ready && !before.has(p.name));
    if (!fresh.length) throw new Error(`${role}: no new Ready pod after the rollout`);
    return fresh[0]!;
  });
}

async function bench(flags: ClusterFlags): Promise<ClusterSummary> {
  ensureSystemTools(['swaks', 'openssl', 'java', 'maven', 'containers', 'node']);
  ensureK8sTools();
  ensureNodeTools();
  ensureChartTools();
  const summary: ClusterSummary = { startedAt: new Date(), flags, rows: [], atInstall: [], restarts: [], timings: {} };
  const plan = planOf(flags);

  if (flags.process) {
    // bench:e2e's Kafka mode, with the same load and the same deliverer settings.
    const sink = new CountingSink();
    await sink.listen();
    run.defer(() => sink.close());
    run.progress('processes: relay, deliverer and a Kafka broker on loopback');
    const system = await startKafkaMode({
      run, dir: dirs.kafka, ...benchAccount(run, dirs.account),
      sinkPort: sink.port, outConnections: flags.outConnections, maxInFlight: flags.maxInFlight, kafkaCompression: 'none',
    });
    summary.process = await measureEndToEnd(system, sink, plan);
    run.progress(`  ${describeE2e(summary.process)}`);
    summary.rows.push(summary.process);
    await system.stop();
  }

  const release = new ClusterRelease(releaseDir('bench-cluster'));
  run.defer(() => release.stop((line) => run.progress(line)));
  run.progress('building the image and starting the one-node cluster');
  await release.prepare();
  const sink = new CountingSink();
  await sink.listen(BRIDGE_ADDRESS);
  run.defer(() => sink.close());
  run.progress('helm install');
  const replicas = String(flags.replicas);
  release.install(sink.port, [
    'relay.autoscaling.enabled=false', `relay.replicas=${replicas}`, 'deliverer.autoscaling.enabled=false', `deliverer.replicas=${replicas}`,
    // As bench:e2e runs them: AUTH without TLS, three partitions, the same outbound settings.
    'relay.allowAuthWithoutTls=true', 'kafka.partitions=3',
    `deliverer.connectionsPerDestination=${flags.outConnections}`, `deliverer.maxInFlight=${flags.maxInFlight}`, 'deliverer.tlsPolicies={*=opportunistic}',
  ]);
  summary.atInstall = release.pods();
  const key = await tenant(release);
  const system = clusterSystem(release, key);
  run.progress(`${system.name}: ${plan.warmup ? `warm-up of ${flags.warmup}, then ` : ''}${flags.messages} messages over ${plan.load.connections} connections` +
    `${plan.open ? `, then ${flags.rate} msgs/s for ${flags.seconds} s` : ''}`);
  summary.cluster = await measureEndToEnd(system, sink, plan);
  run.progress(`  ${describeE2e(summary.cluster)}; ${await system.check()}`);
  summary.rows.push(summary.cluster);

  run.progress('pod start → Ready: a rollout restart of each role in turn');
  summary.restarts = restartTimes(release);
  Object.assign(summary.timings, release.timings, Object.fromEntries(Object.entries(release.node.timings).map(([k, v]) => [`node.${k}`, v])));
  return summary;
}

function podRows(pods: PodTimes[]): string[] {
  return pods.map((p) => `| ${p.component} | ${p.name} | ${fixed(p.createdToReady ?? Number.NaN, 0)} | ${fixed(p.startedToReady ?? Number.NaN, 0)} |`);
}

function render(s: ClusterSummary): string {
  const { cluster, process: processes } = s;
  const row = (r: E2eRow) => {
    const d = r.delivery;
    const cpu = perThousand(r.cpu.serverSeconds + (r.cpu.brokerSeconds ?? 0), d.delivered);
    return `| ${r.name} | ${r.load.accepted} | ${d.delivered}${d.duplicates ? ` (+${d.duplicates} dup.)` : ''} | **${fixed(d.rate, 0)}** | ${fixed(r.load.rate, 0)} | ` +
      `${fixed(d.latency.p50, 0)} | ${fixed(d.latency.p99, 0)} | ${r.open ? `${fixed(r.open.delivery.latency.p50, 1)} / ${fixed(r.open.delivery.latency.p99, 1)}` : 'n/a'} | ` +
      `${fixed(cpu, 3)} | ${fixed(r.cpu.machineBusy * 100, 0)} |`;
  };
  return [
    `# bench:cluster, ${s.startedAt.toISOString()}`,
    '',
    ...machine().map((l) => `- ${l}`),
    `- Load: ${s.flags.connections} connections, ${s.flags.messages} messages of ${s.flags.size} bytes after ${s.flags.warmup} not counted, ` +
      `one recipient each, DKIM-signed; then ${s.flags.rate} msgs/s for ${s.flags.seconds} s (bench:e2e's load, test/bench/e2e-measure.ts).`,
    `- Cluster: ${s.flags.replicas} relay and ${s.flags.replicas} deliverer pod(s), autoscaling off; the relay Service as a NodePort on 127.0.0.1 ` +
      '(kube-proxy iptables rules to the pod); the broker and the sink on the pods\' bridge; AUTH without TLS, as in bench:e2e.',
    '',
    '| system | accepted | delivered | delivered msgs/s | accepted msgs/s | accept → deliver p50 ms | p99 ms | fixed rate p50 / p99 ms | CPU s per 1000 (servers + broker) | machine busy % |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...s.rows.map(row),
    '',
    cluster && processes ? `Cluster rate / process rate: **${fixed(cluster.delivery.rate / processes.delivery.rate, 2)}×**; CPU per message, cluster / processes: ` +
      `${fixed(perThousand(cluster.cpu.serverSeconds + (cluster.cpu.brokerSeconds ?? 0), cluster.delivery.delivered) / perThousand(processes.cpu.serverSeconds + (processes.cpu.brokerSeconds ?? 0), processes.delivery.delivered), 2)}×.` : '',
    '',
    '## Pod start → Ready (seconds; the API\'s timestamps have whole seconds)',
    '',
    'Created → Ready covers scheduling, the pod sandbox, the container start and the readiness probe; started → Ready is the role\'s own start-up as its probe sees it.',
    '',
    '| role | pod | created → Ready | container started → Ready |',
    '|---|---|---|---|',
    '| **at helm install, all at once** | | | |',
    ...podRows(s.atInstall),
    '| **rollout restart, one role at a time** | | | |',
    ...podRows(s.restarts),
    '',
    `Set-up (s): ${JSON.stringify(s.timings)}`,
    '',
  ].join('\n');
}

const flags = run.flags(parseClusterFlags, CLUSTER_USAGE);
await run.measure(40 * 60_000, () => bench(flags), (summary) => {
  const markdown = render(summary);
  return { markdown, file: writeMarkdown(dirs.results, 'cluster', summary.startedAt, markdown) };
});
