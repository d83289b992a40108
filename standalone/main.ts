// Standalone mode: the relay's SMTP service and the delivery engine in one process around
// the embedded SQLite queue, configured from a folder of the same manifests. Same code
// paths, same replies; one role with one stop sequence.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { createDeliveryEngine, type DeliverySettings } from '../deliverer/delivery-engine.ts';
import { createDelivererMetrics } from '../deliverer/metrics.ts';
import type { RetryPolicy } from '../deliverer/retry-policy.ts';
import { SuppressionList } from '../deliverer/suppression-list.ts';
import type { RelayConfig } from '../relay/main.ts';
import { createRelayMetrics } from '../relay/metrics.ts';
import type { RelayServer } from '../relay/relay-server.ts';
import { listenerPorts, startSmtpService } from '../relay/smtp-service.ts';
import { createDispatcher } from '../dispatcher/main.ts';
import { EventLogSource } from '../dispatcher/event-log-source.ts';
import type { DispatchPolicy } from '../dispatcher/webhook-queue.ts';
import { Role } from '../shared/ops/role.ts';
import { watchTrackingKeys, writeNewTrackingKeys } from '../shared/tracking/keys-file.ts';
import { createTrackerMetrics } from '../tracker/metrics.ts';
import { TrackerServer } from '../tracker/tracker-server.ts';
import type { TrackEvent } from '../tracker/track-events.ts';
import { createExampleResources, ensureSelfSignedCertificate, type FirstRunResult } from './first-run.ts';
import { startLocalApi } from './local-api.ts';
import { startLocalInbound } from './local-inbound.ts';
import { LocalDeliveryRuntime } from './local-runtime.ts';
import { SqliteEventStore } from './sqlite-events.ts';
import { SqliteQueue } from './sqlite-queue.ts';
import { startSqliteUsage } from './sqlite-usage.ts';
import { UsageCounters } from '../shared/usage/usage-counters.ts';

export interface StandaloneConfig extends DeliverySettings, Pick<RelayConfig, 'settings' | 'certificates' | 'authThrottle'> {
  stateDir: string;
  resourcesDir?: string;
  exampleDomain: string;
  policy: RetryPolicy;
  maxInFlight: number;
  metricsHost: string;
  metricsPort: number;
  /** The tracker's HTTP port, on the SMTP listeners' host. */
  trackerPort: number;
  /** The inbound listener's port (bounces and complaints for --bounce-domain), on the same host; -1 for none. */
  inboundPort: number;
  /** The HTTP API's port (the suppression list), on the same host; -1 for none. */
  apiPort: number;
  /** Largest API request body. */
  apiMaxBodyBytes: number;
  /** Days the events API keeps events. */
  eventRetentionDays: number;
  /** Batching and retries of webhook posts. */
  webhooks: DispatchPolicy;
  webhooksAllowPrivate: boolean;
}

export interface RunningStandalone {
  role: Role;
  server: RelayServer;
  firstRun: FirstRunResult | undefined;
  eventsLog: string;
  /** Where tracked links and pixels point. */
  trackingUrl: string;
  shutdown(): Promise<void>;
}

export async function startStandalone(config: StandaloneConfig, logger: Logger): Promise<RunningStandalone> {
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const resourcesDir = config.resourcesDir ?? path.join(config.stateDir, 'resources');
  const firstRun = config.resourcesDir ? undefined : await createExampleResources(resourcesDir, config.exampleDomain, config.settings.hostname);
  const certificates = config.certificates.length
    ? config.certificates
    : [await ensureSelfSignedCertificate(path.join(config.stateDir, 'tls'), config.settings.hostname)];

  const role = await Role.start({ name: 'standalone', logger, metricsHost: config.metricsHost, metricsPort: config.metricsPort });
  const relayMetrics = createRelayMetrics(role.registry);
  const delivererMetrics = createDelivererMetrics(role.registry);
  const store = await role.openConfig({ resourcesDir });

  const eventsLog = path.join(config.stateDir, 'events.jsonl');
  // The events API searches this index of the event log. Indexing waits for the next turn of
  // the event loop, out of the outcome commit that the delivery loop waits on, and takes what
  // several commits logged in one transaction.
  const eventStore = new SqliteEventStore(path.join(config.stateDir, 'events.db'), config.eventRetentionDays);
  let unindexed: string[] = [];
  const indexEvents = () => {
    const lines = unindexed;
    unindexed = [];
    if (!lines.length) return;
    try {
      eventStore.insert(lines);
    } catch (error) {
      logger.error({ err: error, events: lines.length }, 'events not indexed for the events API (they are in the event log)');
    }
  };
  const queue = new SqliteQueue({
    onEventsLogged: (lines) => {
      if (!unindexed.length) setImmediate(indexEvents);
      unindexed = unindexed.concat(lines);
    },
    file: path.join(config.stateDir, 'queue.db'), eventsLog,
    onEventLogError: (error) => logger.error({ err: error, eventsLog }, 'events could not be written to the event log; they stay queued and are written with the next ones'),
    onBodyError: (error, job) => logger.error({ err: error, job }, "a message's body file cannot be read; the job is set aside in dead_letters"),
  });
  // The tracker answers in this process too; its opens and clicks go to the same event log.
  const keysFile = config.tracking.keysFile ?? path.join(config.stateDir, 'tracking-keys');
  if (!config.tracking.keysFile && !existsSync(keysFile)) writeNewTrackingKeys(keysFile);
  const keys = watchTrackingKeys(keysFile, role, logger);
  // Opens and clicks of one turn of the event loop share one commit: a burst of readers is not a burst of fsyncs on the SMTP process.
  let engagement: TrackEvent[] = [];
  const recordEngagement = () => {
    const batch = engagement;
    engagement = [];
    try {
      if (batch.length) queue.recordEvents(batch);
    } catch (error) {
      logger.error({ err: error, events: batch.length }, 'opens and clicks not recorded in the event log');
    }
  };
  const tracker = new TrackerServer({
    keys, metrics: createTrackerMetrics(role.registry), logger,
    publish: (event) => {
      if (engagement.push(event) === 1) setImmediate(recordEngagement);
    },
    // An unsubscribe is committed with its event before the answer, and holds mail back here at once.
    unsubscribe: async (event, suppression) => {
      queue.recordEvents([event], [suppression]);
      suppressions.add(suppression);
    },
  });
  const trackerPort = await tracker.listen(config.trackerPort, config.settings.host);
  role.onStop('tracker (requests in progress are answered)', async () => {
    await tracker.close();
    recordEngagement();
  });
  const trackingUrl = config.tracking.url ?? `http://${config.settings.host === '0.0.0.0' ? 'localhost' : config.settings.host}:${trackerPort}`;

  // Sending limits, failed AUTHs and providers' throttling as counted before a restart.
  const counters = new UsageCounters();
  const usage = startSqliteUsage({
    file: path.join(config.stateDir, 'usage.db'), counters, logger,
    onPublished: (n) => relayMetrics.usagePublished.inc(n), onFailed: () => relayMetrics.usagePublishFailures.inc(),
  });
  const suppressions = new SuppressionList();
  const { deliverer, closePool } = createDeliveryEngine(role, { ...config, tracking: { ...config.tracking, keys, url: trackingUrl } }, store, suppressions, delivererMetrics, counters);
  const runtime = new LocalDeliveryRuntime({ queue, deliverer, policy: config.policy, suppressions, metrics: delivererMetrics, logger, maxInFlight: config.maxInFlight });
  runtime.start();
  const inboundPort = await startLocalInbound(role, {
    host: config.settings.host, port: config.inboundPort, hostname: config.settings.hostname, bounceDomain: config.bounceDomain,
    maxMessageBytes: 10 * 1024 * 1024, certificates, queue, suppressions, trackingKeys: keys, logger,
  });
  const apiPort = await startLocalApi(role, { host: config.settings.host, port: config.apiPort, maxBodyBytes: config.apiMaxBodyBytes, store, queue, suppressions, events: eventStore, logger });
  const server = await startSmtpService(role, {
    settings: config.settings, store, queue, metrics: relayMetrics, certificates, authThrottle: config.authThrottle, counters,
  });
  role.onStop('usage counts (the last are written)', () => usage.stop());
  // Webhooks follow the event log, as dispatchers follow mtrelay.events in a cluster.
  const { dispatcher, flushStatus } = createDispatcher(role, store, config.webhooks, config.webhooksAllowPrivate, undefined);
  const webhookFeed = new EventLogSource({ log: eventsLog, checkpoint: path.join(config.stateDir, 'webhooks.checkpoint'), dispatcher, logger });
  webhookFeed.start();
  role.onStop('delivery loop (deliveries in flight finish)', () => runtime.stop());
  role.onStop('webhooks (posts in progress end; the position of what is done is kept)', async () => {
    await webhookFeed.stop();
    await flushStatus();
  });
  role.onStop('outbound SMTP connections', closePool);
  role.onStop('queue (pending writes are committed)', () => queue.close());
  role.onStop('events index (what is logged is indexed)', () => {
    if (unindexed.length) indexEvents();
    eventStore.close();
  });
  role.started({ ports: listenerPorts(server, config.settings), trackerPort, ...(inboundPort ? { inboundPort } : {}), ...(apiPort ? { apiPort } : {}), state: config.stateDir, resources: resourcesDir, queued: queue.depth }, 'standalone listening');
  return { role, server, firstRun, eventsLog, trackingUrl, shutdown: () => role.shutdown() };
}
