// The chart on a cluster whose pods really run (test/k8s/node.ts): `helm install` with the
// image built from the Dockerfile, the operator, relay and deliverer pods Ready, a
// SendingDomain and an ApiKey applied with kubectl, and the seed's swaks command through the
// relay's NodePort (on loopback, standing in for the LoadBalancer) reaching a mailbox with a
// valid DKIM signature; a helm upgrade and a deleted deliverer pod under steady load losing
// nothing; the autoscalers reading real metrics; a bounce through the inbound role's NodePort
// suppressing its address, which the API pod lists; the message's events in the API pod's
// PostgreSQL events store and its trace; owned Secrets collected when their resources go; and the machine as
// it was once the cluster stops.
// @needs cluster k8s chart image kafka-own processes swaks dkimpy openssl postgres
// @limit 900s
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { freePort } from '../kafka/broker.ts';
import { BRIDGE, BRIDGE_ADDRESS } from '../k8s/node.ts';
import { verifyDkim } from '../helpers/dkim-verify.ts';
import { isAccepted, isClean421, steadyLoad, tally } from '../helpers/steady-load.ts';
import { TestDnsServer } from '../helpers/dns-server.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { submitArgs, swaks } from '../helpers/swaks.ts';
import { eventually } from '../helpers/eventually.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { filled } from '../inbound/report-corpus.ts';
import { BOUNCE_DOMAIN, ClusterRelease, IMAGE, RELAY_HOSTNAME, RELEASE_NS, releaseDir, type Loose } from './release.ts';

// The same image under the tag an upgrade moves to: every pod of the release is replaced.
const NEXT_TAG = 'cluster-test-next';
const release = new ClusterRelease(releaseDir('cluster'));
const { dir, timings } = release;
let sink: SmtpSink;
const dns = new TestDnsServer();
let dnsAddress = '';
let apiKey = '';
let nodePort = 0;

const kubectl = (args: string[], input?: string) => release.kubectl(args, input);
const json = (args: string[]) => release.json(args);

before(async () => {
  await release.prepare();
  await release.startEventsDatabase();
  sink = new SmtpSink({ host: BRIDGE_ADDRESS, port: await freePort() });
  await sink.listen();
  dnsAddress = await dns.start();
  release.install(sink.port);
});

let stopped: Promise<void> | undefined;
/** Uninstalls the release and stops the cluster, once (the last test, or after a failure). */
function stopCluster(): Promise<void> {
  stopped ??= (async () => {
    console.log(`# timings (s): ${JSON.stringify({ ...timings, ...Object.fromEntries(Object.entries(release.node?.timings ?? {}).map(([k, v]) => [`node.${k}`, v])) })}`);
    await release.stop((line) => console.log(`# ${line}`));
    await Promise.all([sink?.close(), dns.stop()]);
  })();
  return stopped;
}
after(stopCluster);

test('helm install: the operator, relay and deliverer pods run the image and are Ready', () => {
  const pods = release.pods();
  for (const component of ['operator', 'relay', 'deliverer']) assert.ok(pods.some((p) => p.component === component && p.ready), `${component}: ${JSON.stringify(pods)}`);
  console.log(`# pod created → Ready (s): ${JSON.stringify(pods.map((p) => [p.component, p.createdToReady]))}`);
  const images = (json(['get', 'pods', '-n', RELEASE_NS]).items as Loose[]).flatMap((p) => p.spec.containers.map((c: { image: string }) => c.image));
  assert.deepEqual([...new Set(images)], [IMAGE]);
});

test("kubectl apply a SendingDomain and an ApiKey; the seed's swaks command through the NodePort reaches the mailbox, DKIM-signed", async () => {
  kubectl(['create', 'namespace', 'acme']);
  kubectl(['apply', '-f', '-'], [
    'apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain', 'metadata: {name: example-com, namespace: acme}', 'spec: {domain: example.com}',
    '---', 'apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', 'metadata: {name: app, namespace: acme}', 'spec: {permissions: [smtp/send]}', '',
  ].join('\n'));
  const key = await eventually('the generated API key', () => {
    const data = json(['get', 'secret', 'app-apikey', '-n', 'acme']).data as Record<string, string>;
    return data.apiKey && Buffer.from(data.apiKey, 'base64').toString();
  }, 60_000, 1000);
  const records = await eventually('the DKIM record in the SendingDomain status', () =>
    (json(['get', 'sendingdomain', 'example-com', '-n', 'acme']).status?.dnsRecords as { type: string; name: string; value: string }[] | undefined), 60_000, 1000);
  for (const record of records) dns.zone.set(record.name, record.type === 'CNAME' ? { CNAME: record.value } : { TXT: [record.value] });

  apiKey = key;
  nodePort = release.nodePort();
  // The relay reads the config the operator writes; until then the domain is unknown (550), so retry.
  const result = await eventually('a 250 through the NodePort', async () => {
    const sent = await swaks(submitArgs({ port: nodePort, key, ca: release.caCert, from: 'app@example.com', to: 'someone@recipient.test' }));
    return /^250 /.test(sent.dataReply ?? '') && sent;
  }, 120_000, 1000);
  assert.match(result.dataReply!, /^250 2\.0\.0 OK \d+$/);
  const [copy] = await sink.waitFor('someone@recipient.test', 1, 60_000);
  assert.match(copy!.message.toString(), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com;/m);
  assert.equal(await verifyDkim(copy!.message, dnsAddress), 'pass');
});

/** Pod names, images and readiness of a component of the release. */
function pods(component: string): { name: string; image: string; ready: boolean }[] {
  const ready = new Set(release.pods(component).filter((p) => p.ready).map((p) => p.name));
  return (json(['get', 'pods', '-n', RELEASE_NS, '-l', `app.kubernetes.io/component=${component}`]).items as Loose[]).map((p) => ({
    name: p.metadata.name as string, image: p.spec.containers[0].image as string, ready: ready.has(p.metadata.name as string),
  }));
}

/**
 * Sends steadily through the NodePort (STARTTLS, AUTH, one message a transaction) while
 * `disrupt` runs, then checks every 250 against the mailbox. Asserts that none was lost and that
 * every reply that was not a 250 was a clean 421; returns the counts for the report.
 */
async function underSteadyLoad(disrupt: () => Promise<void>): Promise<Record<string, number>> {
  const before = sink.received.length;
  const load = steadyLoad(() => nodePort, apiKey, 15, 3, { ca: readFileSync(release.caCert), servername: RELAY_HOSTNAME });
  const started = Date.now();
  try {
    await new Promise((r) => setTimeout(r, 6000));
    await disrupt();
    await new Promise((r) => setTimeout(r, 6000));
  } finally {
    await load.stop();
  }
  // The mailbox holds the earlier tests' mail too: tally counts only this load's.
  const { accepted, delivered, lost, duplicates } = await tally(sink, load.sent, 180_000);
  const unclean = load.sent.filter((s) => !isAccepted(s) && !isClean421(s));
  const counts = {
    seconds: Math.round((Date.now() - started) / 1000), sent: load.sent.length, accepted: accepted.length,
    refused421: load.sent.filter(isClean421).length, unclean: unclean.length, delivered,
    duplicates, lost: lost.length, mailboxCopies: sink.received.length - before,
  };
  assert.deepEqual(lost.map((s) => s.messageId), [], `a message answered 250 never arrived: ${JSON.stringify(counts)}`);
  assert.deepEqual(unclean.map((s) => s.reply), [], 'every reply that was not a 250 is a clean 421');
  assert.ok(accepted.length >= 100, `only ${accepted.length} accepted: ${JSON.stringify(counts)}`);
  const last = accepted.at(-1)!.startedAt;
  assert.ok(load.sent.filter((s) => s.startedAt > last).length < 10, 'mail was accepted until the load stopped');
  return counts;
}

test('helm upgrade to a new image tag while a client sends steadily: every pod replaced, every 250 delivered, at most clean 421s', async (t) => {
  release.node.tagImage(IMAGE, `${IMAGE.split(':')[0]}:${NEXT_TAG}`);
  const old = [...pods('relay'), ...pods('deliverer')].map((p) => p.name);
  assert.ok(old.length >= 4, `two relays and two deliverers (the autoscalers' minimum): ${old.join(', ')}`);
  const counts = await underSteadyLoad(async () => {
    const since = Date.now();
    release.helm(['upgrade', '--reuse-values', '--wait', '--timeout', '5m', '--set', `image.tag=${NEXT_TAG}`]);
    timings.helmUpgrade = (Date.now() - since) / 1000;
  });
  const now = [...pods('relay'), ...pods('deliverer')].filter((p) => p.ready);
  assert.ok(now.length >= 4 && now.every((p) => !old.includes(p.name) && p.image.endsWith(`:${NEXT_TAG}`)), `every relay and deliverer pod replaced: ${JSON.stringify(now)}`);
  t.diagnostic(`helm upgrade under load: ${JSON.stringify(counts)}; upgrade took ${timings.helmUpgrade} s`);
});

test('kubectl delete pod of a deliverer mid-load: nothing lost, the duplicates counted', async (t) => {
  const [victim] = pods('deliverer').filter((p) => p.ready);
  assert.ok(victim, 'a deliverer is running');
  const counts = await underSteadyLoad(async () => {
    kubectl(['delete', 'pod', victim.name, '-n', RELEASE_NS, '--wait=false']);
    await eventually('a replacement deliverer Ready', () => pods('deliverer').filter((p) => p.ready && p.name !== victim.name).length >= 2, 120_000, 1000);
  });
  assert.ok(!pods('deliverer').some((p) => p.name === victim.name && p.ready), 'the deleted pod is gone');
  t.diagnostic(`deliverer pod deleted under load: ${JSON.stringify(counts)}`);
});

test("the autoscalers read real metrics: metrics-server serves the pods' CPU and memory, and each HPA reports its utilization", async (t) => {
  type Metric = { type: string; resource?: { name: string; current: { averageUtilization?: number } } };
  const utilization = await eventually('a current CPU utilization on both autoscalers', () => {
    const hpas = json(['get', 'hpa', '-n', RELEASE_NS]).items as Loose[];
    const found = Object.fromEntries(hpas.map((h) => [h.metadata.name as string, {
      cpu: (h.status?.currentMetrics as Metric[] | undefined)?.find((m) => m.type === 'Resource' && m.resource?.name === 'cpu')?.resource?.current.averageUtilization,
      active: (h.status?.conditions as { type: string; status: string; reason: string }[] | undefined)?.find((c) => c.type === 'ScalingActive'),
    }]));
    const both = ['mtrelay-relay', 'mtrelay-deliverer'].every((name) => typeof found[name]?.cpu === 'number' && found[name]?.active?.status === 'True');
    return both && found;
  }, 120_000, 1000);
  for (const name of ['mtrelay-relay', 'mtrelay-deliverer']) assert.equal(utilization[name]!.active!.reason, 'ValidMetricFound');
  // The same figures by hand: kubectl top reads the metrics API the autoscalers read.
  const top = kubectl(['top', 'pods', '-n', RELEASE_NS, '--no-headers']).trim().split('\n');
  assert.ok(top.some((l) => /^mtrelay-relay-\S+\s+\d+m\s+\d+Mi$/.test(l)) && top.some((l) => /^mtrelay-deliverer-/.test(l)), top.join('\n'));
  t.diagnostic(`HPA CPU utilization (% of requests): ${JSON.stringify(Object.fromEntries(Object.entries(utilization).map(([k, v]) => [k, v.cpu])))}; kubectl top: ${top.join(' | ')}`);
});

test("a bounce through the inbound role's NodePort becomes an out_of_band event, holds the address back in every deliverer pod, the API pod lists it, and its trace shows it", async () => {
  assert.ok(release.pods('inbound').some((p) => p.ready), 'the inbound pod is Ready');
  const events = await KafkaReader.start(release.broker.bootstrap, 'mtrelay.events', false);
  try {
    const send = async () => {
      const sent = await swaks(submitArgs({ port: nodePort, key: apiKey, ca: release.caCert, from: 'app@example.com', to: 'gone@recipient.test' }));
      return /^250 2\.0\.0 OK (\d+)$/.exec(sent.dataReply ?? '')?.[1];
    };
    const transmissionId = await send();
    assert.ok(transmissionId, 'accepted');
    const copy = await eventually('the copy in the mailbox', () => sink.received.find((r) => r.message.includes(`X-MT-Transmission: ${transmissionId}; namespace=acme`)), 60_000, 1000);
    assert.equal(copy.mailFrom, `b+${transmissionId}+gone=recipient.test@${BOUNCE_DOMAIN}`);
    const report = filled('gmail-no-such-account.eml', { bounceAddress: copy.mailFrom, fblAddress: `fbl@${BOUNCE_DOMAIN}`, transmissionId, namespace: 'acme', rcpt: 'gone@recipient.test' });
    const bounced = await swaks(['--server', `127.0.0.1:${release.nodePort('smtp', 'mtrelay-inbound')}`, '--from', '<>', '--to', copy.mailFrom, '-tls',
      '--tls-verify', '--tls-ca-path', release.caCert, '--data', '-'], report.toString('latin1'));
    assert.equal(bounced.dataReply, '250 2.0.0 Report accepted (bounce)', bounced.output.slice(-400));
    await eventually('the out_of_band event', () => events.records.some((r) => r.value.includes(`"type":"out_of_band"`) && r.value.includes(transmissionId)), 30_000, 1000);
    // Both deliverer pods follow the suppressions topic: the next message to the address is held back.
    const held = await eventually('a policy_rejection for the bounced address', async () => {
      const next = await send();
      const outcome = () => events.records.map((r) => JSON.parse(r.value.toString()) as { type: string; transmission_id: string }).find((e) => e.transmission_id === next && e.type !== 'injection');
      await eventually(`the outcome of ${next}`, outcome, 30_000, 1000);
      return outcome()!.type === 'policy_rejection' && next;
    }, 60_000, 1000);
    assert.ok(held);
    // The API pod lists the entry to a key of the account with suppressions/manage.
    kubectl(['apply', '-f', '-'], 'apiVersion: mtrelay.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: manager, namespace: acme}\nspec: {permissions: [suppressions/manage]}\n');
    const managerKey = await eventually('the manager key', () => {
      const data = json(['get', 'secret', 'manager-apikey', '-n', 'acme']).data as Record<string, string>;
      return data.apiKey && Buffer.from(data.apiKey, 'base64').toString();
    }, 60_000, 1000);
    const apiPod = release.pods('api').find((p) => p.ready)!;
    const podIp = json(['get', 'pod', apiPod.name, '-n', RELEASE_NS]).status.podIP as string;
    const listed = await eventually('the bounced address through the API', async () => {
      const response = await fetch(`http://${podIp}:8081/api/v1/suppression-list/gone@recipient.test`, { headers: { authorization: managerKey } });
      return response.status === 200 && await response.json() as { results: { recipient: string; source: string; bounce_class: number }[] };
    }, 60_000, 1000);
    assert.deepEqual(listed.results.map((e) => [e.recipient, e.source, e.bounce_class]), [['gone@recipient.test', 'bounce', 10]]);

    // The API pod stores the events in PostgreSQL: the trace shows the delivery and the later bounce.
    kubectl(['apply', '-f', '-'], 'apiVersion: mtrelay.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: reader, namespace: acme}\nspec: {permissions: [events/read]}\n');
    const readerKey = await eventually('the reader key', () => {
      const data = json(['get', 'secret', 'reader-apikey', '-n', 'acme']).data as Record<string, string>;
      return data.apiKey && Buffer.from(data.apiKey, 'base64').toString();
    }, 60_000, 1000);
    type Trace = { results: { recipients: { rcpt_to: string; status: string; steps: { type: string }[] }[] } };
    const trace = await eventually('the trace of the bounced message', async () => {
      const response = await fetch(`http://${podIp}:8081/api/v1/events/trace/${transmissionId}`, { headers: { authorization: readerKey } });
      const body = response.status === 200 ? await response.json() as Trace : undefined;
      return body?.results.recipients[0]?.steps.some((s) => s.type === 'out_of_band') && body;
    }, 60_000, 1000);
    assert.deepEqual(trace.results.recipients.map((r) => [r.rcpt_to, r.status, r.steps.map((s) => s.type)]), [['gone@recipient.test', 'bounced', ['injection', 'delivery', 'out_of_band']]]);
    const db = await release.postgres!.client();
    try {
      const rows = await db.query('SELECT type FROM mtrelay_events WHERE transmission_id = $1 ORDER BY ts', [transmissionId]);
      assert.equal(rows.rowCount, 3, 'the rows are in the events database');
    } finally {
      await db.end();
    }
    const page = await fetch(`http://${podIp}:8081/trace`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>Message trace · mtrelay<\/title>/);
  } finally {
    await events.stop();
  }
});

test('deleting the SendingDomain and the ApiKey collects the Secrets they own (kube-controller-manager garbage collection)', async () => {
  assert.ok(json(['get', 'secret', 'example-com-dkim', '-n', 'acme']).metadata.ownerReferences?.length, 'the DKIM Secret is owned');
  kubectl(['delete', 'sendingdomain', 'example-com', '-n', 'acme', '--wait=true', '--timeout=60s']);
  kubectl(['delete', 'apikey', 'app', '-n', 'acme', '--wait=true', '--timeout=60s']);
  await eventually('the owned Secrets gone', () => {
    const names = (json(['get', 'secrets', '-n', 'acme']).items as { metadata: { name: string } }[]).map((s) => s.metadata.name);
    return !names.includes('example-com-dkim') && !names.includes('app-apikey');
  }, 60_000, 1000);
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
