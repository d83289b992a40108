// `mtrelay inbound` wiring in a cluster: the SMTP server for the bounce domains, and a Kafka
// producer that stores each report's events (<prefix>.events, keyed by transmission) and
// suppressions (<prefix>.suppressions, compacted; every deliverer follows it) before the 250.
// Stop order: stop taking reports (those in DATA finish), then the producer.
import type { Logger } from 'pino';
import { suppressionRecord } from '../deliverer/suppression-list.ts';
import { createKafka, type KafkaConnection } from '../shared/kafka/client.ts';
import { connectRoleProducer } from '../shared/kafka/role-producer.ts';
import { topicNames } from '../shared/kafka/topics.ts';
import { Role } from '../shared/ops/role.ts';
import { readTlsFiles, type CertificateFiles } from '../relay/tls-files.ts';
import { InboundServer } from './inbound-server.ts';
import { createInboundMetrics } from './metrics.ts';
import { watchTrackingKeys } from '../shared/tracking/keys-file.ts';

export interface InboundConfig {
  host: string;
  port: number;
  hostname: string;
  bounceDomains: string[];
  maxMessageBytes: number;
  tls: CertificateFiles[];
  /** The tracking keys (unsubscribe tokens); without them unsubscribe@ is refused. */
  trackingKeysFile?: string;
  kafka: KafkaConnection;
  topicPrefix: string;
  metricsHost: string;
  metricsPort: number;
}

export async function startInbound(config: InboundConfig, logger: Logger): Promise<{ role: Role; port: number; shutdown(): Promise<void> }> {
  const role = await Role.start({ name: 'inbound', logger, metricsHost: config.metricsHost, metricsPort: config.metricsPort });
  const metrics = createInboundMetrics(role.registry);
  const kafka = createKafka({ connection: config.kafka, clientId: 'mtrelay-inbound', logger });
  const producer = await connectRoleProducer(kafka, role, logger);
  const topics = topicNames(config.topicPrefix);

  const server = new InboundServer({
    hostname: config.hostname, bounceDomains: config.bounceDomains, maxMessageBytes: config.maxMessageBytes,
    ...(config.tls.length ? { tls: readTlsFiles(config.tls) } : {}), metrics, logger,
    ...(config.trackingKeysFile ? { trackingKeys: watchTrackingKeys(config.trackingKeysFile, role, logger) } : {}),
    store: async (events, suppressions) => {
      // Suppressions first: an event a user sees means the address is already held back.
      if (suppressions.length) {
        await producer.send({ topic: topics.suppressions, acks: -1, messages: suppressions.map(suppressionRecord) });
      }
      if (events.length) {
        await producer.send({ topic: topics.events, acks: -1, messages: events.map((e) => ({ key: e.transmission_id, value: JSON.stringify(e) })) });
      }
    },
  });
  const port = await server.listen(config.port, config.host);
  role.onStop('SMTP listener (reports in DATA finish and are answered)', () => server.close());
  role.onStop('Kafka producer', () => producer.disconnect());
  role.started({ port, bounceDomains: config.bounceDomains, tls: config.tls.length > 0 }, 'inbound listening');
  return { role, port, shutdown: () => role.shutdown() };
}
