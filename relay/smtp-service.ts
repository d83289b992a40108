// The SMTP submission service as a part of a role: listeners with their certificate watch,
// handing messages to whichever queue the role has (Kafka for the relay, SQLite standalone),
// and their place in the role's stop sequence.
import type { ConfigStore } from '../shared/config/store.ts';
import type { CompiledConfig } from '../shared/config/types.ts';
import type { Role } from '../shared/ops/role.ts';
import type { SubmissionQueue } from '../shared/queue.ts';
import type { UsageCounters } from '../shared/usage/usage-counters.ts';
import { AuthThrottle, type AuthThrottleOptions } from './auth-throttle.ts';
import type { RelayMetrics } from './metrics.ts';
import { RelayServer, type RelaySettings } from './relay-server.ts';
import { certificateExpiry, readTlsFiles, watchTlsFiles, type CertificateFiles, type TlsMaterial } from './tls-files.ts';
import { TicketKeys } from './tls-tickets.ts';

export interface SmtpServiceOptions {
  settings: RelaySettings;
  store: ConfigStore;
  queue: SubmissionQueue;
  metrics: RelayMetrics;
  /** Certificate pairs (RSA, ECDSA); none: no STARTTLS, no implicit TLS. */
  certificates: CertificateFiles[];
  authThrottle: Partial<AuthThrottleOptions>;
  /** The fleet's shared counts (loaded before this starts, so a restart resets no limit). */
  counters: UsageCounters;
}

export async function startSmtpService(role: Role, o: SmtpServiceOptions): Promise<RelayServer> {
  const tls = o.certificates.length ? readTlsFiles(o.certificates) : undefined;
  const tickets = new TicketKeys(role.logger);
  o.metrics.probes.usageCounters = () => o.counters.size;
  const server = new RelayServer({
    settings: o.settings, store: o.store, queue: o.queue, throttle: new AuthThrottle(o.authThrottle, o.counters), counters: o.counters, metrics: o.metrics, logger: role.logger, tls,
    ticketKey: tickets.current,
  });
  tickets.onChange((key) => server.setTicketKey(key));
  // The operator's config carries the key all replicas share; a folder's does not.
  const shareTicketKey = (document: CompiledConfig) => document.tls && tickets.useShared(document.tls.ticketKey);
  if (o.store.current) shareTicketKey(o.store.current.document);
  o.store.on('change', ({ document }) => shareTicketKey(document));
  // The expiry is a metric so an alert warns before clients start failing the handshake.
  const inUse = (m: TlsMaterial) => o.metrics.certificateExpiry.set(certificateExpiry(m));
  if (tls) inUse(tls);
  await server.listen();
  if (tls) {
    role.onStop('TLS certificate watch', watchTlsFiles(o.certificates, role.logger, (m) => {
      server.updateTls(m);
      inUse(m);
    }));
  }
  role.onStop('SMTP listeners (sessions in DATA finish)', () => server.drain());
  role.onStop('TLS ticket key rotation', () => tickets.stop());
  return server;
}

/** The ports the listeners are bound to, for the start-up log line. */
export function listenerPorts(server: RelayServer, settings: RelaySettings): Record<string, number> {
  return Object.fromEntries(settings.listeners.map((l) => [l.name, server.port(l.name)]));
}
