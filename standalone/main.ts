// Standalone mode: relay and deliverer in one process around the embedded SQLite queue,
// configured from a folder of the same manifests. Same code paths, same replies.
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { createDelivererMetrics } from '../deliverer/metrics.ts';
import { createDeliveryEngine, type DeliverySettings } from '../deliverer/main.ts';
import type { RetryPolicy } from '../deliverer/retry-policy.ts';
import { SuppressionList } from '../deliverer/suppression-list.ts';
import { startSmtpService, type RelayConfig } from '../relay/main.ts';
import { createRelayMetrics } from '../relay/metrics.ts';
import type { RelayServer } from '../relay/relay-server.ts';
import { FolderConfigSource } from '../shared/config/folder-source.ts';
import { ConfigStore } from '../shared/config/store.ts';
import { listeningPort, startOpsServer } from '../shared/ops/http.ts';
import { createExampleResources, ensureSelfSignedCertificate, type FirstRunResult } from './first-run.ts';
import { LocalDeliveryRuntime } from './local-runtime.ts';
import { SqliteQueue } from './sqlite-queue.ts';

export interface StandaloneConfig extends DeliverySettings, Pick<RelayConfig, 'settings' | 'tlsCert' | 'tlsKey' | 'authThrottle'> {
  stateDir: string;
  resourcesDir?: string;
  exampleDomain: string;
  policy: RetryPolicy;
  maxInFlight: number;
  metricsHost: string;
  metricsPort: number;
}

export interface RunningStandalone {
  server: RelayServer;
  ops: Server;
  firstRun: FirstRunResult | undefined;
  eventsLog: string;
  shutdown(): Promise<void>;
}

export async function startStandalone(config: StandaloneConfig, logger: Logger): Promise<RunningStandalone> {
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const resourcesDir = config.resourcesDir ?? path.join(config.stateDir, 'resources');
  const firstRun = config.resourcesDir ? undefined : createExampleResources(resourcesDir, config.exampleDomain, config.settings.hostname);
  const tls = config.tlsCert && config.tlsKey
    ? { cert: config.tlsCert, key: config.tlsKey }
    : await ensureSelfSignedCertificate(path.join(config.stateDir, 'tls'), config.settings.hostname);

  const relayMetrics = createRelayMetrics();
  const delivererMetrics = createDelivererMetrics(relayMetrics.registry);
  const store = new ConfigStore();
  store.on('change', (loaded) => relayMetrics.configGeneration.set(loaded.generation));
  const source = new FolderConfigSource({ dir: resourcesDir, store, logger, onError: () => relayMetrics.configReloadErrors.inc() });
  await source.start();

  const eventsLog = path.join(config.stateDir, 'events.jsonl');
  const queue = new SqliteQueue(path.join(config.stateDir, 'queue.db'), eventsLog);
  const suppressions = new SuppressionList();
  const { deliverer, pool } = createDeliveryEngine(config, store, suppressions, delivererMetrics, logger);
  const runtime = new LocalDeliveryRuntime({ queue, deliverer, policy: config.policy, suppressions, metrics: delivererMetrics, logger, maxInFlight: config.maxInFlight });
  runtime.start();
  const { server, stopTlsWatch } = await startSmtpService({
    settings: config.settings, store, queue, metrics: relayMetrics, logger, tlsCert: tls.cert, tlsKey: tls.key, authThrottle: config.authThrottle,
  });
  const ops = await startOpsServer({
    host: config.metricsHost, port: config.metricsPort, registry: relayMetrics.registry,
    readiness: () => (server.draining ? 'draining' : store.loaded ? undefined : 'no config loaded'),
  });
  logger.info({
    ports: Object.fromEntries(config.settings.listeners.map((l) => [l.name, server.port(l.name)])),
    metricsPort: listeningPort(ops), state: config.stateDir, resources: resourcesDir, queued: queue.depth,
  }, 'standalone listening');

  let stopping: Promise<void> | undefined;
  return {
    server, ops, firstRun, eventsLog,
    shutdown: () => (stopping ??= (async () => {
      logger.info('draining: no new connections, finishing transactions and deliveries in progress');
      source.stop();
      stopTlsWatch();
      await server.drain();
      await runtime.stop();
      pool.close();
      await queue.close();
      await new Promise<void>((resolve) => ops.close(() => resolve()));
      logger.info('standalone stopped');
    })()),
  };
}
