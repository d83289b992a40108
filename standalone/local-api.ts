// Standalone's API listener: the same HTTP API as `mtrelay api`, on the SQLite queue. Entries
// are committed to the queue's suppressions table and take effect in this process's delivery
// loop at once. Events are searched in the events index (sqlite-events.ts).
import type { Logger } from 'pino';
import { suppressionKey, type SuppressionList } from '../deliverer/suppression-list.ts';
import { ApiServer } from '../api/api-server.ts';
import { createApiMetrics } from '../api/metrics.ts';
import type { ConfigStore } from '../shared/config/store.ts';
import type { Role } from '../shared/ops/role.ts';
import type { SqliteEventStore } from './sqlite-events.ts';
import type { SqliteQueue } from './sqlite-queue.ts';

export interface LocalApiOptions {
  host: string;
  /** -1: no API listener. */
  port: number;
  maxBodyBytes: number;
  store: ConfigStore;
  queue: SqliteQueue;
  suppressions: SuppressionList;
  events: SqliteEventStore;
  logger: Logger;
}

/** The API listener's port, or undefined when it does not run. */
export async function startLocalApi(role: Role, o: LocalApiOptions): Promise<number | undefined> {
  if (o.port < 0) return undefined;
  const server = new ApiServer({
    store: o.store, metrics: createApiMetrics(role.registry), logger: o.logger, maxBodyBytes: o.maxBodyBytes, events: o.events,
    suppressions: {
      entries: (namespace) => o.suppressions.entries(namespace),
      lookup: (namespace, address) => o.suppressions.lookup(namespace, address),
      put: async (entries) => {
        o.queue.recordEvents([], entries);
        for (const e of entries) o.suppressions.add(e);
      },
      remove: async (entries) => {
        o.queue.removeSuppressions(entries);
        for (const e of entries) o.suppressions.remove(suppressionKey(e.namespace, e.address, e.type));
      },
    },
  });
  const port = await server.listen(o.port, o.host);
  role.onStop('API (requests in progress are answered)', () => server.close());
  return port;
}
