// Wires the relay together: config source, Kafka topics and producer, SMTP listeners,
// the operations endpoint, and a graceful drain on SIGTERM.
import type { Server } from 'node:http';
import type { Admin } from 'kafkajs';
import type { Logger } from 'pino';
import { relayView } from '../shared/config/compiler.ts';
import { openConfigSource, type ConfigOrigin } from '../shared/config/sources.ts';
import { ConfigStore } from '../shared/config/store.ts';
import type { SubmissionQueue } from '../shared/queue.ts';
import { createKafka } from '../shared/kafka/client.ts';
import { ensureTopics, topicNames, type TopicLayout } from '../shared/kafka/topics.ts';
import { listeningPort, startOpsServer } from '../shared/ops/http.ts';
import { AuthThrottle, type AuthThrottleOptions } from './auth-throttle.ts';
import { createRelayMetrics, type RelayMetrics } from './metrics.ts';
import { RelayServer, type RelaySettings } from './relay-server.ts';
import { SubmissionProducer } from './submission-producer.ts';
import { readTlsFiles, watchTlsFiles } from './tls-files.ts';

export interface RelayConfig {
  settings: RelaySettings;
  /** A folder of manifests or the operator's config Secret. */
  config: ConfigOrigin;
  brokers: string[];
  topics: Omit<TopicLayout, 'maxMessageBytes'>;
  kafkaTimeoutMs: number;
  tlsCert?: string;
  tlsKey?: string;
  metricsHost: string;
  metricsPort: number;
  authThrottle: Partial<AuthThrottleOptions>;
}

export interface RunningRelay {
  server: RelayServer;
  ops: Server;
  store: ConfigStore;
  producer: SubmissionProducer;
  /** Drains and stops everything; resolves when the process may exit. */
  shutdown(): Promise<void>;
}

/** Kafka may start after the relay (a fresh cluster): keep trying, the relay is not ready meanwhile. */
async function ensureTopicsWithRetry(newAdmin: () => Admin, layout: TopicLayout, logger: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const admin = newAdmin();
    try {
      await admin.connect();
      await ensureTopics(admin, layout, logger);
      return;
    } catch (error) {
      logger.warn({ err: { message: (error as Error).message }, attempt }, 'cannot create Kafka topics yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * attempt)));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

export interface SmtpServiceOptions {
  settings: RelaySettings;
  store: ConfigStore;
  queue: SubmissionQueue;
  metrics: RelayMetrics;
  logger: Logger;
  tlsCert?: string;
  tlsKey?: string;
  authThrottle: Partial<AuthThrottleOptions>;
}

/** The SMTP listeners with their certificate watch; the queue decides where messages go. */
export async function startSmtpService(o: SmtpServiceOptions): Promise<{ server: RelayServer; stopTlsWatch: () => void }> {
  const tls = o.tlsCert && o.tlsKey ? readTlsFiles(o.tlsCert, o.tlsKey) : undefined;
  const server = new RelayServer({ settings: o.settings, store: o.store, queue: o.queue, throttle: new AuthThrottle(o.authThrottle), metrics: o.metrics, logger: o.logger, tls });
  await server.listen();
  const stopTlsWatch = o.tlsCert && o.tlsKey ? watchTlsFiles(o.tlsCert, o.tlsKey, o.logger, (m) => server.updateTls(m)) : () => undefined;
  return { server, stopTlsWatch };
}

export async function startRelay(config: RelayConfig, logger: Logger): Promise<RunningRelay> {
  const metrics = createRelayMetrics();
  const store = new ConfigStore();
  store.on('change', (loaded) => metrics.configGeneration.set(loaded.generation));
  // The operator's relay Secret holds no private keys already; the view also covers a folder.
  const source = await openConfigSource(config.config, { store, logger, onError: () => metrics.configReloadErrors.inc(), view: relayView });
  await source.start();

  const kafka = createKafka({ brokers: config.brokers, clientId: 'mtrelay-relay', logger, requestTimeoutMs: config.kafkaTimeoutMs });
  const layout: TopicLayout = { ...config.topics, maxMessageBytes: config.settings.maxMessageBytes };
  await ensureTopicsWithRetry(() => kafka.admin(), layout, logger);
  const producer = new SubmissionProducer({
    kafka, topic: topicNames(layout.prefix).submissions, logger, timeoutMs: config.kafkaTimeoutMs,
    produceSeconds: metrics.produceSeconds,
  });
  producer.start();

  const { server, stopTlsWatch } = await startSmtpService({ ...config, store, queue: producer, metrics, logger });

  const readiness = () => {
    metrics.kafkaConnected.set(producer.connected ? 1 : 0);
    if (server.draining) return 'draining';
    if (!store.loaded) return 'no config loaded';
    if (!producer.connected) return 'Kafka producer not connected';
    return undefined;
  };
  const ops = await startOpsServer({ host: config.metricsHost, port: config.metricsPort, registry: metrics.registry, readiness });
  logger.info({
    ports: Object.fromEntries(config.settings.listeners.map((l) => [l.name, server.port(l.name)])),
    metricsPort: listeningPort(ops), tls: Boolean(config.tlsCert), authWithoutTls: config.settings.allowAuthWithoutTls,
  }, 'relay listening');

  let stopping: Promise<void> | undefined;
  const shutdown = () => (stopping ??= (async () => {
    logger.info('draining: no new connections, finishing transactions in progress');
    source.stop();
    stopTlsWatch();
    await server.drain();
    await producer.close();
    await new Promise<void>((resolve) => ops.close(() => resolve()));
    logger.info('relay stopped');
  })());
  return { server, ops, store, producer, shutdown };
}
