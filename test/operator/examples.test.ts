// The examples work as applied: every file under examples/ goes to a real API server with
// kubectl, the operator (with its own service account) does its part, the records it asks
// for are published in the test DNS server, and every resource becomes Ready.
// @needs k8s processes
// @limit 60s
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../kafka/broker.ts';
import type { MtrelayProcess } from '../helpers/relay-process.ts';
import { OperatorCluster, condition, eventually } from './cluster-fixture.ts';

let cluster: OperatorCluster;
let operator: MtrelayProcess;

before(async () => {
  cluster = await OperatorCluster.start('examples');
  operator = await cluster.startOperator('examples-operator');
  await operator.waitForLog((l) => l.msg === 'became the leader');
});
after(async () => {
  await operator?.stop();
  await cluster?.stop();
});

const examples = readdirSync(path.join(repoRoot, 'examples'), { recursive: true, encoding: 'utf8' })
  .filter((f) => /\.ya?ml$/.test(f)).map((f) => path.join(repoRoot, 'examples', f));

test('every example becomes Ready once its DNS records are published', async () => {
  const resources: { kind: string; name: string; namespace: string }[] = [];
  for (const file of examples) {
    cluster.api.kubectl(['apply', '-f', file]);
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const { apiVersion, kind, metadata } = doc.toJS() as { apiVersion: string; kind: string; metadata: { name: string; namespace: string } };
      if (apiVersion.startsWith('mtrelay.dev/')) resources.push({ kind, name: metadata.name, namespace: metadata.namespace });
    }
  }
  assert.deepEqual([...new Set(resources.map((r) => r.kind))].sort(), ['AccountSettings', 'ApiKey', 'SendingDomain', 'Webhook']);
  for (const { kind, name, namespace } of resources.filter((r) => r.kind === 'SendingDomain')) {
    await eventually(`${kind} ${name} records`, () => (cluster.getJson(['sendingdomain', '-n', namespace, name]).status as { dnsRecords?: unknown[] } | undefined)?.dnsRecords?.length);
    cluster.publishRecords(namespace, name);
  }
  // AccountSettings has no status: it is only what the account wrote.
  for (const { kind, name, namespace } of resources.filter((r) => r.kind !== 'AccountSettings')) {
    const ready = await eventually(`${kind} ${namespace}/${name} Ready`, () => {
      const c = condition(cluster.getJson([kind.toLowerCase(), '-n', namespace, name]).status, 'Ready');
      return c?.status === 'True' && c;
    });
    assert.equal(ready.status, 'True');
  }
  // The key the README tells users to read is there, generated, never published with the project.
  assert.match(cluster.secretValue('acme', 'app-sender-apikey'), /^mt_[A-Za-z0-9_-]{43}$/);
});
