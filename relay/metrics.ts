// The relay's Prometheus metrics, on the registry of the role that runs the relay.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createRelayMetrics(registry: Registry) {
  const registers = [registry];
  /** Set by the relay once its producer exists; read at every scrape. */
  const probes = { kafkaConnected: (): boolean => false, inFlightBytes: (): number => 0, usageCounters: (): number => 0 };
  return {
    probes,
    connections: new Counter({ name: 'mtrelay_relay_connections_total', help: 'SMTP connections accepted, by listener', labelNames: ['listener'], registers }),
    openConnections: new Gauge({ name: 'mtrelay_relay_open_connections', help: 'SMTP connections open now', labelNames: ['listener'], registers }),
    tlsHandshakes: new Counter({ name: 'mtrelay_relay_tls_handshakes_total', help: 'Completed TLS handshakes (STARTTLS or implicit), by protocol', labelNames: ['listener', 'protocol'], registers }),
    auth: new Counter({ name: 'mtrelay_relay_auth_total', help: 'AUTH attempts by result (ok, bad_user, unknown_key, disabled, expired, no_permission, throttled, not_ready)', labelNames: ['result'], registers }),
    replies: new Counter({ name: 'mtrelay_relay_replies_total', help: 'Replies to DATA by name in the reply catalogue (docs/smtp-replies.md) and SMTP code', labelNames: ['reply', 'code'], registers }),
    receivedBytes: new Counter({ name: 'mtrelay_relay_received_bytes_total', help: 'Message bytes received in DATA', registers }),
    acceptedMessages: new Counter({ name: 'mtrelay_relay_accepted_messages_total', help: 'Messages acknowledged by Kafka and answered 250, by account (the tenant\'s namespace)', labelNames: ['account'], registers }),
    certificateExpiry: new Gauge({
      name: 'mtrelay_relay_tls_certificate_expiry_timestamp_seconds', help: 'When the TLS certificate in use expires (its notAfter, Unix seconds)', registers,
    }),
    produceSeconds: new Histogram({
      name: 'mtrelay_relay_kafka_produce_seconds', help: 'Time from handing a batch to the Kafka producer to the broker acknowledgement',
      labelNames: ['result'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    }),
    refusedConnections: new Counter({ name: 'mtrelay_relay_refused_connections_total', help: 'Connections refused at the greeting, by reason (per_address_limit)', labelNames: ['reason'], registers }),
    limitRefusals: new Counter({
      name: 'mtrelay_relay_limit_refusals_total', help: 'Commands refused by a sending limit (messages_per_hour, messages_per_day, recipients_per_message, sandbox)', labelNames: ['limit'], registers,
    }),
    usagePublished: new Counter({ name: 'mtrelay_relay_usage_records_published_total', help: 'Usage counts (one per counter bucket) this relay shared with the fleet', registers }),
    usagePublishFailures: new Counter({ name: 'mtrelay_relay_usage_publish_failures_total', help: 'Times the usage counts could not be shared (retried a second later)', registers }),
    usageCounters: new Gauge({
      name: 'mtrelay_relay_usage_counters', help: 'Counters held (keys, sandbox accounts, client addresses with failed AUTHs)', registers,
      collect() { this.set(probes.usageCounters()); },
    }),
    inFlightBytes: new Gauge({
      name: 'mtrelay_relay_in_flight_bytes', help: 'Bytes of message data held now across all DATA in progress (at most --max-in-flight-bytes)', registers,
      collect() { this.set(probes.inFlightBytes()); },
    }),
    kafkaConnected: new Gauge({
      name: 'mtrelay_relay_kafka_connected', help: '1 while the Kafka producer is connected', registers,
      collect() { this.set(probes.kafkaConnected() ? 1 : 0); },
    }),
  };
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
