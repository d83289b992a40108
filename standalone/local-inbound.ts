// Standalone's inbound listener: the bounce domain's MX in the same process. A report's events
// and suppressions are committed to the SQLite queue in one transaction (the events then reach
// the event log and webhooks like the others), and the suppressions take effect in this
// process's delivery loop at once. Runs only with a --bounce-domain: without one, return
// paths are the senders' own and nothing comes back here.
import type { Logger } from 'pino';
import type { SuppressionList } from '../deliverer/suppression-list.ts';
import { InboundServer } from '../inbound/inbound-server.ts';
import { createInboundMetrics } from '../inbound/metrics.ts';
import { readTlsFiles, type CertificateFiles } from '../relay/tls-files.ts';
import type { Role } from '../shared/ops/role.ts';
import type { SqliteQueue } from './sqlite-queue.ts';
import type { TrackingKeyRing } from '../shared/tracking/tokens.ts';

export interface LocalInboundOptions {
  host: string;
  /** -1: no inbound listener. */
  port: number;
  hostname: string;
  bounceDomain: string | undefined;
  maxMessageBytes: number;
  certificates: CertificateFiles[];
  queue: SqliteQueue;
  suppressions: SuppressionList;
  /** The tracking keys: mail to unsubscribe@ the bounce domain unsubscribes as the tracker's links do. */
  trackingKeys: () => TrackingKeyRing;
  logger: Logger;
}

/** The inbound listener's port, or undefined when it does not run. */
export async function startLocalInbound(role: Role, o: LocalInboundOptions): Promise<number | undefined> {
  if (o.port < 0 || !o.bounceDomain) return undefined;
  const server = new InboundServer({
    hostname: o.hostname, bounceDomains: [o.bounceDomain], maxMessageBytes: o.maxMessageBytes, tls: readTlsFiles(o.certificates),
    metrics: createInboundMetrics(role.registry), logger: o.logger, trackingKeys: o.trackingKeys,
    store: async (events, suppressions) => {
      o.queue.recordEvents(events, suppressions);
      for (const entry of suppressions) o.suppressions.add(entry);
    },
  });
  const port = await server.listen(o.port, o.host);
  role.onStop('inbound listener (reports in DATA finish and are answered)', () => server.close());
  return port;
}
