// The lifecycle every role shares: the operations endpoint from the first moment, readiness
// made of the parts' checks, the config with its metrics, and stop steps in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { Role } from '../../shared/ops/role.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';

const logger = pino({ level: 'silent' });

async function get(role: Role, pathname: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${role.metricsPort}${pathname}`);
  return { status: res.status, body: await res.text() };
}

test('healthy at once, not ready while starting, then ready as long as every part is', async () => {
  const role = await Role.start({ name: 'test', logger, metricsHost: '127.0.0.1', metricsPort: 0 });
  try {
    assert.equal((await get(role, '/healthz')).status, 200);
    assert.deepEqual(await get(role, '/readyz'), { status: 503, body: 'not ready: starting\n' });
    let producer = false;
    role.readiness(() => (producer ? undefined : 'Kafka producer not connected'));
    role.started({}, 'test running');
    assert.deepEqual(await get(role, '/readyz'), { status: 503, body: 'not ready: Kafka producer not connected\n' });
    producer = true;
    assert.deepEqual(await get(role, '/readyz'), { status: 200, body: 'ready\n' });
  } finally {
    await role.shutdown();
  }
});

test('stop steps run once, in the order the parts started; draining shows at once; the endpoint closes last', async () => {
  const role = await Role.start({ name: 'test', logger, metricsHost: '127.0.0.1', metricsPort: 0 });
  role.started({}, 'test running');
  const order: string[] = [];
  let readyDuringStop: { status: number; body: string } | undefined;
  role.onStop('listeners', async () => {
    readyDuringStop = await get(role, '/readyz');
    order.push('listeners');
  });
  role.onStop('producer', () => { order.push('producer'); });
  await Promise.all([role.shutdown(), role.shutdown()]);
  assert.deepEqual(order, ['listeners', 'producer']);
  assert.deepEqual(readyDuringStop, { status: 503, body: 'not ready: draining\n' });
  await assert.rejects(get(role, '/healthz'), 'the endpoint is closed after the last step');
});

test('a failing step is logged, the next steps still run, and the stop reports it', async () => {
  const role = await Role.start({ name: 'test', logger, metricsHost: '127.0.0.1', metricsPort: 0 });
  const order: string[] = [];
  role.onStop('drain', () => { throw new Error('stuck'); });
  role.onStop('flush', () => { order.push('flush'); });
  await assert.rejects(role.shutdown(), /stop steps failed: drain/);
  assert.deepEqual(order, ['flush']);
});

test('the config: not ready before it loads, counted by generation, its source stopped first', async () => {
  const role = await Role.start({ name: 'test', logger, metricsHost: '127.0.0.1', metricsPort: 0 });
  try {
    const store = await role.openConfig({ resourcesDir: accountFolder(newApiKey()).dir });
    role.started({}, 'test running');
    assert.ok(store.sendingDomain('acme', 'example.com'));
    assert.equal((await get(role, '/readyz')).status, 200);
    assert.match((await get(role, '/metrics')).body, /^mtrelay_config_generation 1$/m);
  } finally {
    await role.shutdown();
  }
});
