// The chart against a real kube-apiserver (and the real kubectl): every object of every value
// set is accepted by server-side dry-run (the defaults with no third-party CRDs present, the
// others with the CRDs of prometheus-operator, cert-manager, KEDA and Strimzi installed), and
// helm install / upgrade / uninstall work, leaving the CRDs, the tenants' resources and the
// tracking keys behind; the keys generated at install survive upgrades and a new install.
// Pods do not run here: there is no kubelet.
// @needs k8s chart processes
// @limit 150s
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { KubeApiServer } from '../k8s/api-server.ts';
import { repoRoot } from '../kafka/broker.ts';
import { chartDir, helm, renderText, thirdPartyCrds, valueSets, valuesFile } from './chart.ts';

let api: KubeApiServer;
const helmAs = (args: string[]) => helm([...args, '--kubeconfig', api.kubeconfig]);

before(async () => {
  const runs = path.join(repoRoot, '.cache', 'test-runs');
  mkdirSync(runs, { recursive: true });
  // No CRDs applied up front: the chart installs them itself, and Helm owns them.
  api = new KubeApiServer({ dir: mkdtempSync(path.join(runs, 'k8s-chart-')), applyCrds: false, removeDirOnStop: true });
  await api.start();
});
after(async () => {
  await api?.stop();
});

const dryRun = (manifest: string, namespace: string) => api.kubectl(['apply', '--dry-run=server', '--server-side', '--field-manager=chart-test', '-n', namespace, '-f', '-'], manifest);

test('every object of every value set is accepted by the API server (server-side dry-run)', () => {
  api.kubectl(['create', 'namespace', 'dry-run']);
  // Defaults first, while no third-party CRD exists: they must not need one.
  const defaults = dryRun(renderText({ set: 'defaults', namespace: 'dry-run' }), 'dry-run');
  assert.match(defaults, /deployment\.apps\/mtrelay-relay serverside-applied \(server dry run\)/);
  assert.match(defaults, /customresourcedefinition\.apiextensions\.k8s\.io\/sendingdomains\.mtrelay\.dev serverside-applied/);

  for (const file of thirdPartyCrds) api.kubectl(['apply', '--server-side', '-f', file]);
  api.kubectl(['wait', '--for', 'condition=Established', '--timeout', '60s', 'crd', '--all']);
  for (const set of valueSets) {
    const out = dryRun(renderText({ set, namespace: 'dry-run' }), 'dry-run');
    assert.doesNotMatch(out, /error|invalid/i, `${set}: ${out}`);
  }
  // The objects for other operators are there and were validated against their real schemas.
  const monitoring = dryRun(renderText({ set: 'cert-manager', namespace: 'dry-run' }), 'dry-run');
  for (const object of ['prometheusrule.monitoring.coreos.com/mtrelay', 'podmonitor.monitoring.coreos.com/mtrelay', 'certificate.cert-manager.io/mtrelay-relay', 'configmap/mtrelay-dashboard-overview', 'ingress.networking.k8s.io/mtrelay-tracker']) {
    assert.match(monitoring, new RegExp(`${object.replace(/[./]/g, '\\$&')} serverside-applied`), monitoring);
  }
  const strimzi = dryRun(renderText({ set: 'strimzi', namespace: 'dry-run' }), 'dry-run');
  for (const object of ['kafkauser.kafka.strimzi.io/mtrelay', 'kafkauser.kafka.strimzi.io/mtrelay-tracker', 'kafkauser.kafka.strimzi.io/mtrelay-dispatcher', 'kafkatopic.kafka.strimzi.io/mtrelay-submissions', 'scaledobject.keda.sh/mtrelay-deliverer']) {
    assert.match(strimzi, new RegExp(`${object.replace(/[./]/g, '\\$&')} serverside-applied`), strimzi);
  }
  // And a broken object is refused: the check has teeth.
  assert.throws(() => dryRun(renderText({ set: 'strimzi', namespace: 'dry-run' }).replace('type: scram-sha-512', 'type: scram-sha-1'), 'dry-run'), /Unsupported value: "scram-sha-1"/);
});

test('helm install, upgrade and uninstall; the CRDs, the tenants\' resources and the tracking keys stay', () => {
  const install = helmAs(['install', 'mtrelay', chartDir, '--namespace', 'mail', '--create-namespace', '-f', valuesFile('defaults')]);
  assert.match(install, /STATUS: deployed/);
  assert.match(install, /kubectl get service -n mail mtrelay-relay/); // NOTES.txt tells where the relay is
  const deployments = () => api.kubectl(['get', 'deployments', '-n', 'mail', '-o', 'jsonpath={.items[*].metadata.name}']).split(' ').filter(Boolean).sort();
  assert.deepEqual(deployments(), ['mtrelay-api', 'mtrelay-deliverer', 'mtrelay-dispatcher', 'mtrelay-operator', 'mtrelay-relay', 'mtrelay-tracker']);
  api.kubectl(['wait', '--for', 'condition=Established', '--timeout', '60s', 'crd', 'sendingdomains.mtrelay.dev']);
  const trackingKeys = () => Buffer.from(api.kubectl(['get', 'secret', '-n', 'mail', 'mtrelay-tracking-keys', '-o', 'jsonpath={.data.keys}']), 'base64').toString();
  const keys = trackingKeys();
  assert.match(keys, /^k\d{8} \S{44}$/m);

  // A tenant's resource, made with kubectl as users do.
  api.kubectl(['create', 'namespace', 'acme']);
  api.kubectl(['apply', '-f', path.join(repoRoot, 'examples', 'resources', 'sending-domain.yaml')]);

  // The API server grants the dispatcher's account its config set, the Webhooks' status and Events, nothing more.
  const dispatcherCan = (...args: string[]) => {
    try {
      return api.kubectl(['auth', 'can-i', ...args, '--as', 'system:serviceaccount:mail:mtrelay-dispatcher']).trim() === 'yes';
    } catch {
      return false; // "no" exits 1
    }
  };
  assert.ok(dispatcherCan('watch', 'secret/mtrelay-dispatcher-config-7', '-n', 'mail'));
  assert.ok(dispatcherCan('patch', 'webhooks.mtrelay.dev', '--subresource=status', '-n', 'acme'));
  assert.ok(dispatcherCan('create', 'events', '-n', 'acme'));
  assert.ok(!dispatcherCan('get', 'secret/mtrelay-deliverer-config', '-n', 'mail'));
  assert.ok(!dispatcherCan('patch', 'webhooks.mtrelay.dev', '-n', 'acme'));
  assert.ok(!dispatcherCan('get', 'webhooks.mtrelay.dev', '--subresource=status', '-n', 'acme'));

  // Upgrade to cert-manager TLS with monitoring (their CRDs were installed by the first test).
  const upgrade = helmAs(['upgrade', 'mtrelay', chartDir, '--namespace', 'mail', '-f', valuesFile('cert-manager')]);
  assert.match(upgrade, /STATUS: deployed/);
  assert.match(upgrade, /REVISION: 2/);
  assert.equal(api.kubectl(['get', 'certificate', '-n', 'mail', 'mtrelay-relay', '-o', 'jsonpath={.spec.secretName}']), 'mtrelay-relay-tls');
  const args = api.kubectl(['get', 'deployment', '-n', 'mail', 'mtrelay-relay', '-o', 'jsonpath={.spec.template.spec.containers[0].args}']);
  assert.match(args, /--tls-cert=\/etc\/mtrelay\/tls\/tls.crt/);
  assert.match(api.kubectl(['get', 'prometheusrule', '-n', 'mail', 'mtrelay', '-o', 'name']), /mtrelay/);
  assert.equal(api.kubectl(['get', 'ingress', '-n', 'mail', 'mtrelay-tracker', '-o', 'jsonpath={.spec.rules[0].host}']), 'track.example.com');
  // The upgrade took the keys from the cluster: links already sent keep working.
  assert.equal(trackingKeys(), keys);
  // And a key added on top (a rotation) stays through the next upgrade.
  const rotated = `k29990101 ${Buffer.alloc(32, 7).toString('base64')}\n${keys}`;
  api.kubectl(['patch', 'secret', '-n', 'mail', 'mtrelay-tracking-keys', '--type', 'merge', '-p', JSON.stringify({ data: { keys: Buffer.from(rotated).toString('base64') } })]);
  assert.match(helmAs(['upgrade', 'mtrelay', chartDir, '--namespace', 'mail', '-f', valuesFile('cert-manager')]), /REVISION: 3/);
  assert.equal(trackingKeys(), rotated);

  const uninstall = helmAs(['uninstall', 'mtrelay', '--namespace', 'mail']);
  assert.match(uninstall, /release "mtrelay" uninstalled/);
  assert.match(uninstall, /customresourcedefinition.*kept|resource-policy|These resources were kept/i);
  assert.deepEqual(deployments(), []);
  assert.equal(api.kubectl(['get', 'crd', 'sendingdomains.mtrelay.dev', '-o', 'name']).trim(), 'customresourcedefinition.apiextensions.k8s.io/sendingdomains.mtrelay.dev');
  assert.equal(api.kubectl(['get', 'sendingdomain', '-n', 'acme', 'example-com', '-o', 'jsonpath={.spec.domain}']), 'example.com');
  assert.equal(api.kubectl(['get', 'clusterrole', '-l', 'app.kubernetes.io/instance=mtrelay', '-o', 'name']).trim(), '');
  assert.equal(trackingKeys(), rotated);

  // Installing again adopts the kept CRDs and tracking keys (Helm recorded them as its own), and keeps the keys.
  assert.match(helmAs(['install', 'mtrelay', chartDir, '--namespace', 'mail', '-f', valuesFile('defaults')]), /STATUS: deployed/);
  assert.equal(trackingKeys(), rotated);
});
