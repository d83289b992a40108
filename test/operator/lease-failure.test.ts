// An operator that cannot lead says why: started before its namespace exists (so the Lease
// cannot be written), it logs the reason, counts it, and answers /readyz 503 with it; once the
// namespace is there it leads and is ready, without a restart.
// @needs k8s processes
// @limit 45s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { KubeApiServer } from '../k8s/api-server.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { startTestApiServer } from './api-server-fixture.ts';

let api: KubeApiServer;
before(async () => { api = await startTestApiServer('lease-failure'); });
after(async () => { await api?.stop(); });

test('a missing namespace: the reason in the log, on /readyz and in a metric; then it leads once the namespace exists', async () => {
  const operator = new MtrelayProcess(['operator', '--kubeconfig', api.kubeconfig, '--namespace', 'not-yet', '--identity', 'lonely',
    '--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '500ms', '--metrics-host', '127.0.0.1', '--metrics-port', '0']);
  try {
    operator.metricsPort = (await operator.started('operator running')).metricsPort as number;
    const failure = await operator.waitForLog((l) => l.msg === 'cannot take or renew the leader Lease; not leading until it can');
    assert.match(JSON.stringify(failure.err), /namespaces \\"not-yet\\" not found/);
    const ready = await operator.http('/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body, /cannot take or renew the leader Lease not-yet\/mtrelay-operator: .*namespaces "not-yet" not found/);
    assert.ok(await operator.metric('mtrelay_operator_lease_failures_total') >= 1);

    api.kubectl(['create', 'namespace', 'not-yet']);
    await operator.waitForLog((l) => l.msg === 'became the leader', 10_000);
    await operator.waitUntilReady(10_000);
    assert.equal(await operator.metric('mtrelay_operator_leader'), 1);
  } finally {
    assert.equal(await operator.stop(), 0);
  }
});
