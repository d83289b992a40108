// The deliverer's Prometheus metrics, on the registry of the role that delivers (deliverer or standalone).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createDelivererMetrics(registry: Registry) {
  const registers = [registry];
  return {
    outcomes: new Counter({
      name: 'mtrelay_deliverer_outcomes_total', labelNames: ['type', 'bounce_class', 'reply', 'destination'], registers,
      help: 'Recipient outcomes by event type (delivery, delay, bounce, policy_rejection), bounce class, reply (its name in the reply catalogue when the deliverer decided, "remote" when the remote server answered) and destination (gmail, yahoo, microsoft, apple, other)',
    }),
    // `account`, not `namespace`: Prometheus gives every scraped series the pod's namespace.
    accountOutcomes: new Counter({
      name: 'mtrelay_deliverer_account_outcomes_total', labelNames: ['account', 'type'], registers,
      help: 'Recipient outcomes by account (the tenant\'s namespace) and event type',
    }),
    // The denominator of the complaint rate mailbox providers watch (inbound's complaints are the numerator).
    senderDeliveries: new Counter({
      name: 'mtrelay_deliverer_sender_deliveries_total', labelNames: ['account', 'sending_domain'], registers,
      help: 'Recipients delivered, by account and sending domain (the domain the relay let the account send from)',
    }),
    deliveries: new Counter({
      name: 'mtrelay_deliverer_deliveries_total', labelNames: ['destination', 'tls'], registers,
      help: 'Recipients delivered, by destination and whether the connection was encrypted (tls "true" or "false")',
    }),
    tlsSessions: new Counter({
      name: 'mtrelay_deliverer_tls_sessions_total', labelNames: ['domain', 'policy_type', 'result'], registers,
      help: 'Outbound connections by recipient domain (the first 1000, then "other"), the policy they were held to (sts, tlsa, no-policy-found) and their TLS result ("success" or an RFC 8460 result type)',
    }),
    providerFactor: new Gauge({
      name: 'mtrelay_deliverer_provider_rate_factor', labelNames: ['provider'], registers,
      help: 'How much of a provider\'s rate and connections the deliverer uses now: 1, cut to 3/4 (1/2 in a row) on each step with throttling replies in the fleet, down to 1/32, and back up by 5% a step',
    }),
    throttlingReplies: new Counter({
      name: 'mtrelay_deliverer_throttling_replies_total', labelNames: ['provider'], registers,
      help: 'Throttling replies (421 4.7.28, 451 4.7.650, 4.7.0 … rate, …) from a provider\'s MX hosts, seen by this process',
    }),
    deliverySeconds: new Histogram({
      name: 'mtrelay_deliverer_accept_to_delivery_seconds', help: 'From the relay\'s 250 to the remote\'s 250, per recipient',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400], registers,
    }),
    retries: new Counter({ name: 'mtrelay_deliverer_retries_total', help: 'Retry records written, by rung of the ladder', labelNames: ['rung'], registers }),
    inFlight: new Gauge({ name: 'mtrelay_deliverer_in_flight', help: 'Records being delivered now', registers }),
    consumerLag: new Gauge({ name: 'mtrelay_deliverer_consumer_lag', help: 'Records behind the end of the partition at the last fetch', labelNames: ['topic', 'partition'], registers }),
    openConnections: new Gauge({ name: 'mtrelay_deliverer_open_connections', help: 'Outbound SMTP connections open, by destination address (or provider:<name> for a shaped provider\'s hosts together)', labelNames: ['destination'], registers }),
    deadLetters: new Counter({ name: 'mtrelay_deliverer_dead_letters_total', help: 'Records that could not be processed and went to the dead-letter topic', registers }),
  };
}

export type DelivererMetrics = ReturnType<typeof createDelivererMetrics>;
