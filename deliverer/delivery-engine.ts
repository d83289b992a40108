// The delivery engine, whichever queue feeds it (Kafka in the deliverer, SQLite in standalone):
// routes, the TLS each host must offer (DANE, MTA-STS, --tls-policy) with its reports, the SMTP
// pool, per-provider shaping, and the Deliverer that ties them together.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { rootCertificates } from 'node:tls';
import { Resolver } from 'node:dns/promises';
import { watchTrackingKeys } from '../shared/tracking/keys-file.ts';
import type { TrackingKeyRing } from '../shared/tracking/tokens.ts';
import type { ConfigStore } from '../shared/config/store.ts';
import type { Role } from '../shared/ops/role.ts';
import type { UsageCounters } from '../shared/usage/usage-counters.ts';
import { Deliverer } from './delivery.ts';
import type { DelivererMetrics } from './metrics.ts';
import type { DestinationPolicy } from './destination-policy.ts';
import { RouteResolver, type StaticRoute } from './routes.ts';
import { SmtpPool, type PoolLimits, type TlsPolicy } from './smtp-pool.ts';
import type { SuppressionList } from './suppression-list.ts';
import { AdaptiveShaper } from './shaping/adaptive-shaper.ts';
import { readProviderRules } from './shaping/provider-rules.ts';
import { MtaStsPolicies } from './transport-security/mta-sts.ts';
import { TlsReports } from './transport-security/tls-report.ts';
import { TlsReportSender } from './transport-security/tls-report-sender.ts';
import { reportMailer } from './transport-security/tls-report-delivery.ts';
import { TransportSecurity } from './transport-security/transport-security.ts';
import { ValidatedDns } from './transport-security/validated-dns.ts';

/** What delivers, whichever queue feeds it: routes, the SMTP pool, the engine. */
export interface DeliverySettings {
  dnsServers: string[];
  routes: Map<string, StaticRoute>;
  /** Which resolved addresses may be connected to (static routes are not checked). */
  destinations: DestinationPolicy;
  smtpPort: number;
  tlsPolicies: Map<string, TlsPolicy>;
  tlsCaFiles: string[];
  /** Follow recipient domains' MTA-STS policies. */
  mtaSts: boolean;
  /** Follow DNSSEC-validated TLSA records. */
  dane: boolean;
  /** Send daily TLS reports, in this organisation's name; mailed ones from `from`. */
  tlsReports?: { organization: string; contact: string; from?: string };
  heloName: string;
  bounceDomain?: string;
  /** Limits per destination address, for hosts of no known provider. */
  limits: PoolLimits;
  /** Per-provider limits that back off on throttling (undefined: per destination only); `rulesFile` changes the defaults. */
  shaping?: { rulesFile?: string };
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  /** The keys come from `keys` when the role already follows the file (standalone's tracker), else from `keysFile`. */
  tracking: { keysFile?: string; keys?: () => TrackingKeyRing; url?: string; lifetimeSeconds: number };
}

export function tlsPolicyFor(policies: Map<string, TlsPolicy>): (domain: string) => TlsPolicy {
  return (domain) => policies.get(domain) ?? policies.get('*') ?? 'opportunistic';
}

/** A resolver of the configured DNS servers (MTA-STS, TLS reports). */
function resolverOf(settings: DeliverySettings): Resolver {
  const resolver = new Resolver({ timeout: 5000, tries: 2 });
  if (settings.dnsServers.length) resolver.setServers(settings.dnsServers);
  return resolver;
}

/** DANE, MTA-STS and the configured policy, with TLS reports. */
function transportSecurity(settings: DeliverySettings, resolver: Resolver, ca: (string | Buffer)[], metrics: DelivererMetrics): TransportSecurity {
  const reports = new TlsReports(metrics.tlsSessions);
  return new TransportSecurity({
    configured: tlsPolicyFor(settings.tlsPolicies),
    reports,
    ...(settings.dane ? { dane: new ValidatedDns({ servers: settings.dnsServers }) } : {}),
    ...(settings.mtaSts ? { mtaSts: new MtaStsPolicies({ resolver, ca, destinations: settings.destinations }) } : {}),
  });
}

/** Per-provider limits; the fleet's throttling replies are counted in `counters`. */
function providerShaper(role: Role, settings: DeliverySettings, counters: UsageCounters, metrics: DelivererMetrics): AdaptiveShaper {
  const { connectionsPerDestination: connections, messagesPerConnection, messagesPerSecond } = settings.limits;
  const rules = readProviderRules(settings.shaping?.rulesFile, { connections, messagesPerConnection, messagesPerSecond });
  const shaper = new AdaptiveShaper({ rules, counters, factorGauge: metrics.providerFactor, throttledCounter: metrics.throttlingReplies });
  shaper.start();
  role.onStop('provider shaping', () => shaper.stop());
  return shaper;
}

/** The delivery engine of a role; its connections close after the role's runtime has drained. */
export function createDeliveryEngine(role: Role, settings: DeliverySettings, store: ConfigStore, suppressions: SuppressionList, metrics: DelivererMetrics,
  counters: UsageCounters): { deliverer: Deliverer; closePool: () => void } {
  // Trusted for verified TLS, MTA-STS policy hosts and TLS report receivers alike.
  const ca = [...rootCertificates, ...settings.tlsCaFiles.map((f) => readFileSync(f))];
  // MTA-STS policies and TLS reports are looked up with the same resolvers as the routes.
  const resolver = resolverOf(settings);
  const security = transportSecurity(settings, resolver, ca, metrics);
  const pool = new SmtpPool({
    ...settings.limits,
    heloName: settings.heloName,
    ca,
    connectTimeoutMs: settings.connectTimeoutMs,
    socketTimeoutMs: settings.socketTimeoutMs,
    onTlsSession: (session) => security.reports.record(session),
    onOpenChange: (destination, open) => metrics.openConnections.set({ destination }, open),
  });
  const deliverer = new Deliverer({
    store,
    routes: new RouteResolver({ dnsServers: settings.dnsServers, routes: settings.routes, smtpPort: settings.smtpPort, destinations: settings.destinations }),
    pool,
    security,
    ...(settings.shaping ? { shaper: providerShaper(role, settings, counters, metrics) } : {}),
    isSuppressed: (namespace, address, transactional) => suppressions.has(namespace, address, transactional),
    ...(settings.bounceDomain ? { bounceDomain: settings.bounceDomain } : {}),
    tracking: {
      keys: settings.tracking.keys ?? (settings.tracking.keysFile ? watchTrackingKeys(settings.tracking.keysFile, role, role.logger) : () => undefined),
      ...(settings.tracking.url ? { clusterUrl: settings.tracking.url } : {}),
      lifetimeSeconds: settings.tracking.lifetimeSeconds,
    },
    logger: role.logger,
  });
  if (settings.tlsReports) {
    const { from, ...submitter } = settings.tlsReports;
    const sender = new TlsReportSender({
      reports: security.reports, resolver, destinations: settings.destinations, ca, logger: role.logger,
      submitter: { ...submitter, instance: hostname() }, ...(from ? { mailer: reportMailer(deliverer, store, from) } : {}),
    });
    sender.start();
    role.onStop('daily TLS reports', () => sender.stop());
  }
  return { deliverer, closePool: () => pool.close() };
}
