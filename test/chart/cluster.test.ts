// The chart on a cluster whose pods really run (test/k8s/node.ts): `helm install` with the
// image built from the Dockerfile, the operator, relay and deliverer pods Ready, a
// SendingDomain and an ApiKey applied with kubectl, and the seed's swaks command through the
// relay's NodePort (on loopback, standing in for the LoadBalancer) reaching a mailbox with a
// valid DKIM signature; owned Secrets collected when their resources go; and the machine as it
// was once the cluster stops.
// @needs cluster k8s chart image kafka-own processes swaks dkimpy openssl
// @limit 900s
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { KafkaBroker, freePort, repoRoot } from '../kafka/broker.ts';
import { KubeApiServer } from '../k8s/api-server.ts';
import { BRIDGE, BRIDGE_ADDRESS, KubeNode, createBridge } from '../k8s/node.ts';
import { buildah, buildImage } from '../image/containers.ts';
import { verifyDkim } from '../helpers/dkim-verify.ts';
import { TestDnsServer } from '../helpers/dns-server.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { submitArgs, swaks } from '../helpers/swaks.ts';
import { createTestCa } from '../helpers/tls.ts';
import { chartDir, helm } from './chart.ts';

const IMAGE = 'localhost/mtrelay:cluster-test';
const RELEASE_NS = 'mtrelay-system';
const dir = path.join(repoRoot, '.cache', 'test-runs', `cluster-${process.pid}`);
const timings: Record<string, number> = {};
let api: KubeApiServer;
let node: KubeNode;
let broker: KafkaBroker;
let sink: SmtpSink;
const dns = new TestDnsServer();
let dnsAddress = '';
let caCert = '';

async function eventually<T>(what: string, timeoutMs: number, check: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`${what} not within ${timeoutMs / 1000} s${last ? `: ${(last as Error).message}` : ''}`);
}

const kubectl = (args: string[], input?: string) => api.kubectl(args, input);
// kubectl's JSON, read loosely: the tests name the fields they need.
type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const json = (args: string[]) => JSON.parse(kubectl([...args, '-o', 'json'])) as Loose;

before(async () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let since = Date.now();
  buildImage(IMAGE);
  const archive = path.join(dir, 'mtrelay.tar');
  buildah(['push', '--quiet', IMAGE, `docker-archive:${archive}:${IMAGE}`]);
  timings.image = (Date.now() - since) / 1000;

  createBridge();
  broker = new KafkaBroker({ dir: path.join(dir, 'kafka'), host: BRIDGE_ADDRESS });
  since = Date.now();
  api = new KubeApiServer({ dir: path.join(dir, 'api-server'), address: BRIDGE_ADDRESS, applyCrds: false });
  await Promise.all([broker.start(), api.start()]);
  node = new KubeNode(path.join(dir, 'node'), api);
  await node.start();
  timings.cluster = (Date.now() - since) / 1000;
  since = Date.now();
  node.importImage(archive);
  timings.imageImport = (Date.now() - since) / 1000;

  sink = new SmtpSink({ host: BRIDGE_ADDRESS, port: await freePort() });
  await sink.listen();
  dnsAddress = await dns.start();
  mkdirSync(path.join(dir, 'ca'));
  const ca = createTestCa(path.join(dir, 'ca'));
  caCert = ca.caCert;
  const relayCert = ca.issue('relay', ['smtp.test', '127.0.0.1']);
  kubectl(['create', 'namespace', RELEASE_NS]);
  kubectl(['create', 'secret', 'tls', 'relay-tls', '-n', RELEASE_NS, '--cert', relayCert.cert, '--key', relayCert.key]);

  since = Date.now();
  helm(['install', 'mtrelay', chartDir, '--namespace', RELEASE_NS, '--kubeconfig', api.kubeconfig, '--wait', '--timeout', '8m',
    '--set', 'hostname=smtp.test', '--set', `image.repository=${IMAGE.split(':')[0]}`, '--set', `image.tag=${IMAGE.split(':')[1]}`, '--set', 'image.pullPolicy=Never',
    '--set', `kafka.bootstrapServers=${broker.bootstrap}`, '--set', 'kafka.partitions=2', '--set', 'kafka.replicationFactor=1',
    '--set', 'relay.tls.secretName=relay-tls', '--set', 'relay.service.type=NodePort', '--set', 'relay.replicas=1', '--set', 'relay.preStopSleepSeconds=1',
    '--set', 'operator.replicas=1', '--set', 'operator.requireDnsVerification=false',
    '--set', 'deliverer.replicas=1', '--set', `deliverer.routes={*=${BRIDGE_ADDRESS}:${sink.port}}`, '--set', `deliverer.allowDestinations={${BRIDGE_ADDRESS}/32}`,
    '--set', 'tracker.enabled=false', '--set', 'dispatcher.enabled=false',
  ]);
  timings.helmInstall = (Date.now() - since) / 1000;
});

let stopped: Promise<void> | undefined;
/** Uninstalls the release and stops the cluster, once (the last test, or after a failure). */
function stopCluster(): Promise<void> {
  stopped ??= (async () => {
    console.log(`# timings (s): ${JSON.stringify({ ...timings, ...Object.fromEntries(Object.entries(node?.timings ?? {}).map(([k, v]) => [`node.${k}`, v])) })}`);
    try {
      if (api) helm(['uninstall', 'mtrelay', '--namespace', RELEASE_NS, '--kubeconfig', api.kubeconfig, '--wait', '--timeout', '2m']);
    } catch (error) {
      console.log(`# helm uninstall: ${(error as Error).message}`);
    }
    await node?.stop();
    await Promise.all([api?.stop(), broker?.stop(), sink?.close(), dns.stop()]);
    rmSync(dir, { recursive: true, force: true });
  })();
  return stopped;
}
after(stopCluster);

/** Pods of the release by component, with their readiness and the time from creation to Ready. */
function podsReady(): Record<string, { ready: boolean; secondsToReady?: number }> {
  const pods = json(['get', 'pods', '-n', RELEASE_NS]).items as Loose[];
  return Object.fromEntries(pods.map((p) => {
    const ready = (p.status.conditions ?? []).find((c: { type: string }) => c.type === 'Ready');
    const component = p.metadata.labels['app.kubernetes.io/component'] as string;
    return [component, { ready: ready?.status === 'True', secondsToReady: ready?.status === 'True' ? (Date.parse(ready.lastTransitionTime) - Date.parse(p.metadata.creationTimestamp)) / 1000 : undefined }];
  }));
}

test('helm install: the operator, relay and deliverer pods run the image and are Ready', () => {
  const pods = podsReady();
  for (const component of ['operator', 'relay', 'deliverer']) assert.equal(pods[component]?.ready, true, `${component}: ${JSON.stringify(pods)}`);
  console.log(`# pod start → Ready (s): ${JSON.stringify(Object.fromEntries(Object.entries(pods).map(([k, v]) => [k, v.secondsToReady])))}`);
  const images = (json(['get', 'pods', '-n', RELEASE_NS]).items as Loose[]).flatMap((p) => p.spec.containers.map((c: { image: string }) => c.image));
  assert.deepEqual([...new Set(images)], [IMAGE]);
});

test("kubectl apply a SendingDomain and an ApiKey; the seed's swaks command through the NodePort reaches the mailbox, DKIM-signed", async () => {
  kubectl(['create', 'namespace', 'acme']);
  kubectl(['apply', '-f', '-'], [
    'apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', 'metadata: {name: example-com, namespace: acme}', 'spec: {domain: example.com}',
    '---', 'apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', 'metadata: {name: app, namespace: acme}', 'spec: {permissions: [smtp/send]}', '',
  ].join('\n'));
  const key = await eventually('the generated API key', 60_000, () => {
    const data = json(['get', 'secret', 'app-apikey', '-n', 'acme']).data as Record<string, string>;
    return data.apiKey && Buffer.from(data.apiKey, 'base64').toString();
  });
  const records = await eventually('the DKIM record in the SendingDomain status', 60_000, () =>
    (json(['get', 'sendingdomain', 'example-com', '-n', 'acme']).status?.dnsRecords as { type: string; name: string; value: string }[] | undefined));
  for (const record of records) dns.zone.set(record.name, record.type === 'CNAME' ? { CNAME: record.value } : { TXT: [record.value] });

  const service = json(['get', 'service', 'mtrelay-relay', '-n', RELEASE_NS]);
  const nodePort = (service.spec.ports as { name: string; nodePort: number }[]).find((p) => p.name === 'submission')!.nodePort;
  // The relay reads the config the operator writes; until then the domain is unknown (550), so retry.
  const result = await eventually('a 250 through the NodePort', 120_000, async () => {
    const sent = await swaks(submitArgs({ port: nodePort, key, ca: caCert, from: 'app@example.com', to: 'someone@recipient.test' }));
    return /^250 /.test(sent.dataReply ?? '') && sent;
  });
  assert.match(result.dataReply!, /^250 2\.0\.0 OK \d+$/);
  const [copy] = await sink.waitFor('someone@recipient.test', 1, 60_000);
  assert.match(copy!.message.toString(), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com;/m);
  assert.equal(await verifyDkim(copy!.message, dnsAddress), 'pass');
});

test('deleting the SendingDomain and the ApiKey collects the Secrets they own (kube-controller-manager garbage collection)', async () => {
  assert.ok(json(['get', 'secret', 'example-com-dkim', '-n', 'acme']).metadata.ownerReferences?.length, 'the DKIM Secret is owned');
  kubectl(['delete', 'sendingdomain', 'example-com', '-n', 'acme', '--wait=true', '--timeout=60s']);
  kubectl(['delete', 'apikey', 'app', '-n', 'acme', '--wait=true', '--timeout=60s']);
  await eventually('the owned Secrets gone', 60_000, () => {
    const names = (json(['get', 'secrets', '-n', 'acme']).items as { metadata: { name: string } }[]).map((s) => s.metadata.name);
    return !names.includes('example-com-dkim') && !names.includes('app-apikey');
  });
});

test('stopping the cluster leaves nothing behind: no process, pod cgroup, mount, iptables chain or bridge', async () => {
  await stopCluster();
  const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(dir) || /^\/pause\b/.test(l));
  assert.deepEqual(processes, []);
  assert.equal(existsSync('/sys/fs/cgroup/memory/kubepods'), false, 'pod cgroups removed');
  assert.equal(readFileSync('/proc/self/mounts', 'utf8').includes(dir), false, 'mounts removed');
  for (const save of ['iptables-save', 'ip6tables-save']) {
    assert.deepEqual(execFileSync(save, { encoding: 'utf8' }).split('\n').filter((l) => /KUBE-|CNI-/.test(l)), [], save);
  }
  assert.notEqual(spawnSync('ip', ['link', 'show', BRIDGE]).status, 0, 'bridge deleted');
});
