// The chart rendered by the real helm over every value set in charts/mtrelay/ci/: it lints
// clean, its helm-unittest suites pass, and what it renders agrees with the code it deploys —
// every flag is one the role accepts, every file a flag names is mounted, each role reads the
// config Secret the operator writes for it, the RBAC is operator/rbac.yaml's, the CRDs are crds/, the Strimzi topics are the ones the roles would
// create, the tracking keys it generates are a file the roles read — and every pod is locked down.
// @needs chart processes
// @limit 120s
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { topicConfigs } from '../../shared/kafka/topics.ts';
import { readTrackingKeys } from '../../shared/tracking/keys-file.ts';
import { tempDir } from '../helpers/resources.ts';
import { repoRoot } from '../kafka/broker.ts';
import { chartDir, find, helm, helmUnittest, render, renderText, valueSets, valuesFile, type KubeObject } from './chart.ts';

interface Container {
  name: string; args: string[]; securityContext: Record<string, unknown>; resources?: { requests?: object; limits?: object };
  readinessProbe?: unknown; livenessProbe?: unknown; volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec { securityContext: Record<string, unknown>; containers: Container[]; serviceAccountName: string; automountServiceAccountToken?: boolean }
const podSpec = (o: KubeObject) => (o.spec as { template: { spec: PodSpec } }).template.spec;

/** The long flags `mtrelay <role> --help` lists. */
const flagsOf = new Map<string, Set<string>>();
function knownFlags(role: string): Set<string> {
  if (!flagsOf.has(role)) {
    const help = execFileSync(process.execPath, [path.join(repoRoot, 'cli.ts'), role, '--help'], { encoding: 'utf8' });
    flagsOf.set(role, new Set(help.match(/--[a-z][a-z0-9-]*/g)));
  }
  return flagsOf.get(role)!;
}

test('helm lint --strict passes over every value set', () => {
  assert.ok(valueSets.length >= 5, `value sets: ${valueSets.join(', ')}`);
  for (const set of valueSets) assert.match(helm(['lint', '--strict', chartDir, '-f', valuesFile(set)]), /0 chart\(s\) failed/, set);
});

test('the helm-unittest suites pass', () => {
  const out = execFileSync(helmUnittest, ['--color=false', chartDir], { encoding: 'utf8' });
  const passed = /Tests:\s+(\d+) passed, (\d+) total/.exec(out);
  assert.ok(passed, out);
  assert.equal(passed[1], passed[2], out);
  assert.ok(Number(passed[1]) >= 30, out);
});

describe('every value set renders', () => {
  for (const set of valueSets) {
    test(set, () => {
      const objects = render({ set, namespace: 'mail' });
      const workloads = objects.filter((o) => o.kind === 'Deployment');
      // The strimzi set has a bounce domain, so an inbound role to be its MX.
      const inbound = set === 'strimzi' ? ['mtrelay-inbound'] : [];
      assert.deepEqual(workloads.map((o) => o.metadata.name).sort(), ['mtrelay-api', 'mtrelay-deliverer', 'mtrelay-dispatcher', ...inbound, 'mtrelay-operator', 'mtrelay-relay', 'mtrelay-tracker']);
      const values = parseAllDocuments(readFileSync(valuesFile(set), 'utf8'))[0]!.toJS() as { tracking?: { keys?: { existingSecret?: string } } };
      for (const o of objects) {
        // Secrets come from the user or the operator; the chart makes only the tracking keys, unless the user has them.
        if (o.kind === 'Secret') assert.ok(o.metadata.name === 'mtrelay-tracking-keys' && !values.tracking?.keys?.existingSecret, `${set}: the chart rendered a Secret ${o.metadata.name}`);
        assert.equal(o.metadata.labels?.['app.kubernetes.io/instance'], 'mtrelay', `${o.kind}/${o.metadata.name} labels`);
        if (!/^(ClusterRole|ClusterRoleBinding|CustomResourceDefinition)$/.test(o.kind)) assert.equal(o.metadata.namespace, 'mail', `${o.kind}/${o.metadata.name}`);
      }
      for (const deployment of workloads) {
        const pod = podSpec(deployment);
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
        for (const c of pod.containers) {
          const where = `${set}: ${deployment.metadata.name}/${c.name}`;
          assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } }, where);
          assert.ok(c.resources?.requests && c.resources.limits, `${where}: resources`);
          assert.ok(c.readinessProbe && c.livenessProbe, `${where}: probes`);
          // The first argument is the role; every flag must be one `mtrelay <role> --help` lists.
          const [role, ...args] = c.args;
          const known = knownFlags(role!);
          for (const arg of args) assert.ok(known.has(arg.split('=')[0]!), `${where}: ${arg} is not a flag of mtrelay ${role}`);
          // Every file a flag names is in one of the container's mounts (the root file system holds none of them).
          for (const file of args.flatMap((a) => a.split('=').slice(1).join('=').split(',')).filter((f) => f.startsWith('/etc/mtrelay/'))) {
            assert.ok((c.volumeMounts ?? []).some((m) => file.startsWith(`${m.mountPath}/`)), `${where}: ${file} is in no volume mount`);
          }
        }
      }
      // The tracker and the inbound role face the Internet: no API server token in their pods.
      assert.equal(podSpec(find(objects, 'Deployment', 'mtrelay-tracker')).automountServiceAccountToken, false, set);
      if (inbound.length) assert.equal(podSpec(find(objects, 'Deployment', 'mtrelay-inbound')).automountServiceAccountToken, false, set);
      // Each role watches the config Secret set the operator writes for it, in the release's namespace.
      const flag = (name: string, flagName: string) => podSpec(find(objects, 'Deployment', name)).containers[0]!.args
        .find((a) => a.startsWith(`--${flagName}=`))?.slice(flagName.length + 3);
      for (const role of ['relay', 'deliverer', 'dispatcher']) {
        const written = flag('mtrelay-operator', `${role}-config-secret`);
        assert.ok(written, `${set}: the operator is given --${role}-config-secret`);
        assert.equal(flag(`mtrelay-${role}`, 'config-secret'), `mail/${written}`, `${set}: ${role}`);
      }
    });
  }
});

test('the tracking keys the chart generates are a keys file the tracker and the deliverer read', () => {
  const secret = find(render({ set: 'defaults' }), 'Secret', 'mtrelay-tracking-keys');
  const file = path.join(tempDir('chart-tracking-keys'), 'keys');
  writeFileSync(file, Buffer.from((secret.data as { keys: string }).keys, 'base64'));
  const ring = readTrackingKeys(file);
  assert.equal(ring.keys.size, 1);
  const [key] = [...ring.keys.values()];
  assert.match(key!.id, /^k\d{8}$/);
  assert.equal(key!.secret.length, 32);
  // Random per install: two renders (no cluster to look the Secret up in) differ.
  assert.notEqual((find(render({ set: 'defaults' }), 'Secret', 'mtrelay-tracking-keys').data as { keys: string }).keys, (secret.data as { keys: string }).keys);
});

test('the values schema closes every object it describes', () => {
  const open: string[] = [];
  // Objects with listed properties refuse others; maps of strings and Kubernetes types
  // passed through as they are (affinity, tolerations, NetworkPolicy peers) have none listed.
  const walk = (node: Record<string, unknown>, at: string) => {
    if (node.properties && node.additionalProperties !== false) open.push(at);
    for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Record<string, unknown>>)) walk(child, `${at}.${name}`);
    for (const key of ['items', 'additionalProperties'] as const) if (typeof node[key] === 'object') walk(node[key] as Record<string, unknown>, `${at}[]`);
    for (const alt of (node.anyOf ?? []) as Record<string, unknown>[]) walk(alt, at);
  };
  walk(JSON.parse(readFileSync(path.join(chartDir, 'values.schema.json'), 'utf8')) as Record<string, unknown>, '$');
  assert.deepEqual(open, []);
  // And every value in values.yaml is described by it.
  assert.doesNotThrow(() => renderText({ set: 'defaults' }));
});

test('unknown values are refused, naming the key', () => {
  assert.throws(() => renderText({ set: 'defaults', values: ['relay.replica=3'] }), /replica/);
  assert.throws(() => renderText({ set: 'defaults', values: ['kafka.sasl.mechanism=scram-sha-1'] }), /mechanism/);
});

test('the CRDs the chart installs are crds/, byte for byte', () => {
  const chartCrds = path.join(chartDir, 'files', 'crds');
  const names = readdirSync(path.join(repoRoot, 'crds')).sort();
  assert.deepEqual(readdirSync(chartCrds).sort(), names);
  for (const name of names) {
    assert.equal(readFileSync(path.join(chartCrds, name), 'utf8'), readFileSync(path.join(repoRoot, 'crds', name), 'utf8'),
      `charts/mtrelay/files/crds/${name} differs from crds/${name}: cp crds/*.yaml charts/mtrelay/files/crds/`);
  }
  const rendered = render({ set: 'defaults' }).filter((o) => o.kind === 'CustomResourceDefinition');
  assert.deepEqual(rendered.map((o) => o.metadata.name).sort(), ['accountsettings.mtrelay.dev', 'apikeys.mtrelay.dev', 'sendingdomains.mtrelay.dev', 'webhooks.mtrelay.dev']);
});

test('the RBAC is operator/rbac.yaml, which the operator tests run with', () => {
  const expected = parseAllDocuments(readFileSync(path.join(repoRoot, 'operator', 'rbac.yaml'), 'utf8')).map((d) => d.toJS() as KubeObject);
  // Released as "mtrelay" into mtrelay-system, the chart's names are those of rbac.yaml.
  const rendered = render({ set: 'defaults', namespace: 'mtrelay-system' });
  const rbacKinds = /^(ClusterRole|ClusterRoleBinding|Role|RoleBinding)$/;
  assert.deepEqual(rendered.filter((o) => rbacKinds.test(o.kind)).map((o) => `${o.kind}/${o.metadata.name}`).sort(),
    expected.filter((o) => rbacKinds.test(o.kind)).map((o) => `${o.kind}/${o.metadata.name}`).sort());
  for (const want of expected.filter((o) => rbacKinds.test(o.kind))) {
    const got = find(rendered, want.kind, want.metadata.name);
    for (const field of ['rules', 'roleRef', 'subjects']) assert.deepEqual(got[field], want[field], `${want.kind}/${want.metadata.name} ${field}`);
  }
});

test('the Strimzi KafkaTopics are the topics the roles would create themselves', () => {
  const objects = render({ set: 'strimzi' });
  const values = parseAllDocuments(readFileSync(valuesFile('strimzi'), 'utf8'))[0]!.toJS() as { kafka: { replicationFactor: number } };
  const rendered = objects.filter((o) => o.kind === 'KafkaTopic').map((o) => {
    const spec = o.spec as { topicName: string; partitions: number; replicas: number; config: Record<string, string> };
    return { topic: spec.topicName, numPartitions: spec.partitions, replicationFactor: spec.replicas, configEntries: Object.entries(spec.config).map(([name, value]) => ({ name, value })) };
  });
  const layout = { prefix: 'mtrelay', partitions: 12, replicationFactor: values.kafka.replicationFactor, maxMessageBytes: 26214400, retryDelays: ['1m', '5m', '15m', '1h', '4h'] };
  const byName = <T extends { topic: string; configEntries?: { name: string }[] }>(list: T[]) =>
    list.map((t) => ({ ...t, configEntries: [...(t.configEntries ?? [])].sort((a, b) => a.name.localeCompare(b.name)) })).sort((a, b) => a.topic.localeCompare(b.topic));
  assert.deepEqual(byName(rendered), byName(topicConfigs(layout, values.kafka.replicationFactor)));
  assert.ok(rendered.some((t) => t.configEntries.some((e) => e.name === 'min.insync.replicas' && e.value === '2')));
});
