// The informer heals itself against a real API server: when its watch goes silent (here a
// loopback proxy that stops passing bytes) the watchdog relists once the server is reachable
// again, and an object deleted meanwhile is reported as deleted.
// @needs k8s
// @limit 45s
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { KubeClient, loadKubeConfig, type KubeObject } from '../../shared/kube/client.ts';
import { Informer, type InformerEvent } from '../../shared/kube/informer.ts';
import type { KubeApiServer } from '../k8s/api-server.ts';
import { startTestApiServer } from './api-server-fixture.ts';

/** A TCP proxy that can freeze: connections stay open but no byte passes until thawed. */
class FreezableProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<[net.Socket, net.Socket]>();
  #frozen = false;

  constructor(target: number) {
    this.#server = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.#pairs.add(pair);
      for (const socket of pair) {
        socket.on('error', () => undefined);
        socket.on('close', () => { this.#pairs.delete(pair); client.destroy(); upstream.destroy(); });
      }
      if (!this.#frozen) FreezableProxy.#join(pair);
    });
  }

  static #join([client, upstream]: [net.Socket, net.Socket]): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve((this.#server.address() as net.AddressInfo).port)));
  }

  freeze(): void {
    this.#frozen = true;
    for (const [client, upstream] of this.#pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  thaw(): void {
    this.#frozen = false;
    for (const pair of this.#pairs) FreezableProxy.#join(pair);
  }

  close(): void {
    for (const pair of this.#pairs) for (const socket of pair) socket.destroy();
    this.#server.close();
  }
}

/** Waits for what the informer reports, not for a time. */
async function until(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let api: KubeApiServer;
let proxy: FreezableProxy;
before(async () => {
  api = await startTestApiServer('informer');
  proxy = new FreezableProxy(Number(new URL(api.server).port));
});
after(async () => {
  proxy?.close();
  await api?.stop();
});

test('a silent watch is restarted by the watchdog, and a deletion missed meanwhile is reported', async () => {
  const port = await proxy.listen();
  const config = loadKubeConfig(api.kubeconfig);
  config.clusters = config.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${port}` }));
  const events: [InformerEvent, string][] = [];
  const restarts: string[] = [];
  const logged: Record<string, unknown>[] = [];
  api.kubectl(['create', 'configmap', 'stays', '-n', 'default']);
  api.kubectl(['create', 'configmap', 'goes', '-n', 'default']);
  const informer = new Informer<KubeObject>({
    client: new KubeClient(config), path: '/api/v1/namespaces/default/configmaps',
    logger: pino({ level: 'warn' }, { write: (line: string) => { logged.push(JSON.parse(line) as Record<string, unknown>); } }),
    watchdogMs: 3000, relistMs: 600_000,
    onEvent: (event, object) => events.push([event, object.metadata!.name!]),
    onRestart: (reason) => restarts.push(reason),
  });
  await informer.start();
  try {
    assert.ok(informer.get('goes', 'default'));
    assert.ok(events.some(([e, n]) => e === 'add' && n === 'goes'));

    proxy.freeze();
    api.kubectl(['delete', 'configmap', 'goes', '-n', 'default']); // directly, not through the proxy
    // The watchdog notices the silence and relists; through the frozen proxy that list waits.
    await until('the watchdog relists the silent watch', () => logged.some((l) => l.msg === 'relisting' && String(l.reason).startsWith('watchdog')));
    assert.ok(!events.some(([e]) => e === 'delete'), 'nothing can arrive through a frozen proxy');
    assert.ok(informer.get('goes', 'default'), 'the last known cache is kept meanwhile');

    proxy.thaw();
    // The deletion may come late through the old watch or from the relist; either way once, and the relist completes.
    await until('the relist completes and the deletion is reported', () =>
      restarts.some((r) => r.startsWith('watchdog')) && events.some(([e, n]) => e === 'delete' && n === 'goes'));
    assert.deepEqual(events.filter(([e]) => e === 'delete'), [['delete', 'goes']]);
    assert.equal(informer.get('goes', 'default'), undefined);
    assert.ok(informer.get('stays', 'default'));
  } finally {
    await informer.stop();
  }
});

test('a periodic relist replaces the cache without losing objects', async () => {
  api.kubectl(['create', 'configmap', 'kept', '-n', 'default']);
  const events: InformerEvent[] = [];
  const restarts: string[] = [];
  const informer = new Informer<KubeObject>({
    client: new KubeClient(loadKubeConfig(api.kubeconfig)), path: '/api/v1/namespaces/default/configmaps', logger: pino({ level: 'silent' }),
    relistMs: 1000, onEvent: (event) => events.push(event), onRestart: (reason) => restarts.push(reason),
  });
  await informer.start();
  try {
    await until('a periodic relist', () => restarts.includes('periodic relist'));
    assert.ok(informer.get('kept', 'default'));
    assert.ok(!events.includes('delete'));
  } finally {
    await informer.stop();
  }
});
