// `mtrelay deliverer`: consumes submissions and retries from Kafka and delivers them.
import { hostname } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { addKafkaOptions, addOpsOptions, integer, list, option, type KafkaFlags, type OpsFlags } from '../shared/cli-options.ts';
import { addConfigSourceOptions, configOrigin, type ConfigSourceFlags } from '../shared/config/sources.ts';
import { kafkaConnection } from '../shared/kafka/client.ts';
import { DEFAULT_RETRY_DELAYS } from '../shared/kafka/topics.ts';
import { runRole } from '../shared/ops/role.ts';
import type { DelivererConfig, DeliverySettings } from './main.ts';
import { parseDuration } from '../shared/duration.ts';
import { retryPolicy } from './retry-policy.ts';
import { DestinationPolicy, parseCidr } from './destination-policy.ts';
import { parseStaticRoute } from './routes.ts';
import type { TlsPolicy } from './smtp-pool.ts';

export interface DeliveryFlags {
  dns: string[];
  route: string[];
  allowDestination: string[];
  refuseDestination: string[];
  smtpPort: number;
  tlsPolicy: string[];
  tlsCa: string[];
  mtaSts: boolean;
  dane: boolean;
  tlsReportOrganization?: string;
  tlsReportContact?: string;
  tlsReportFrom?: string;
  heloName: string;
  bounceDomain?: string;
  connectionsPerDestination: number;
  messagesPerConnection: number;
  messagesPerSecond: number;
  shaping: boolean;
  shapingRules?: string;
  connectTimeout: string;
  socketTimeout: string;
  retryDelays: string[];
  retryExpiry: string;
  maxInFlight: number;
  trackingKeys?: string;
  trackingUrl?: string;
  trackingLifetime: string;
}

interface DelivererFlags extends DeliveryFlags, ConfigSourceFlags, KafkaFlags, OpsFlags {
  groupId: string;
  maxSize: number;
}

const repeat = (value: string, previous: string[]) => [...previous, ...list(value)];
/** Address ranges, checked when the command line is read. */
const repeatRanges = (value: string, previous: string[]) => {
  const ranges = list(value);
  try {
    ranges.forEach(parseCidr);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return [...previous, ...ranges];
};
const POLICIES = new Set(['opportunistic', 'required', 'verified']);

export function parseTlsPolicy(spec: string): [string, TlsPolicy] {
  const [domain, policy] = spec.split('=');
  if (!domain || !policy || !POLICIES.has(policy)) throw new Error(`invalid TLS policy "${spec}" (expected DOMAIN=opportunistic|required|verified, DOMAIN may be *)`);
  return [domain.toLowerCase(), policy as TlsPolicy];
}

/** Options of delivery itself, shared by `deliverer` and `standalone`. */
export function addDeliveryOptions(command: Command): Command {
  return command
    .addOption(option('--dns <servers>', 'DNS resolvers HOST:PORT (repeatable; default: the system\'s)').argParser(repeat).default([]))
    .addOption(option('--route <route>', 'static route DOMAIN=HOST:PORT, * for every domain (repeatable)').argParser(repeat).default([]))
    .addOption(option('--allow-destination <range>', 'ADDRESS/PREFIX the deliverer may connect to although it is loopback, private, link-local or reserved (repeatable)').argParser(repeatRanges).default([]))
    .addOption(option('--refuse-destination <range>', 'ADDRESS/PREFIX never connected to, besides loopback, private, link-local and reserved ranges, e.g. a cluster\'s public ranges (repeatable)').argParser(repeatRanges).default([]))
    .addOption(option('--smtp-port <port>', 'port of MX hosts').argParser(integer(1, 65535)).default(25))
    .addOption(option('--tls-policy <policy>', 'DOMAIN=opportunistic|required|verified, * for the default (repeatable)').argParser(repeat).default([]))
    .addOption(option('--tls-ca <file>', 'extra CA certificates to trust for verified TLS and MTA-STS policy hosts (repeatable)').argParser(repeat).default([]))
    .addOption(option('--no-mta-sts', 'ignore the MTA-STS policies of recipient domains (RFC 8461)'))
    .addOption(option('--no-dane', 'ignore DNSSEC-validated TLSA records of MX hosts (RFC 7672); DANE needs a validating resolver in --dns'))
    .addOption(option('--tls-report-organization <name>', 'send daily TLS reports (RFC 8460) to the domains that ask for them, in this organisation\'s name'))
    .addOption(option('--tls-report-contact <address>', 'contact in TLS reports (default: postmaster@<helo name>)'))
    .addOption(option('--tls-report-from <address>', 'mail TLS reports to mailto: addresses from this address, signed with the key of the SendingDomain of its domain (without it, only https: addresses get reports)').argParser(reportFrom))
    .addOption(option('--helo-name <name>', 'name in EHLO; should match the sending address\'s PTR record').default(hostname()))
    .addOption(option('--bounce-domain <domain>', 'domain of the VERP return path (default: keep the envelope sender)'))
    .addOption(option('--connections-per-destination <n>', 'open connections per destination address (hosts of no known provider)').argParser(integer(1)).default(10))
    .addOption(option('--messages-per-connection <n>', 'messages before a connection is closed (hosts of no known provider)').argParser(integer(1)).default(100))
    .addOption(option('--messages-per-second <n>', 'per destination address (hosts of no known provider); 0 for no limit').argParser(integer(0)).default(0))
    .addOption(option('--shaping-rules <file>', 'YAML of per-provider limits that change or add to the defaults (Gmail, Yahoo, Microsoft, Apple)'))
    .addOption(option('--no-shaping', 'no per-provider limits or backing off on throttling replies: per destination address only'))
    .addOption(option('--connect-timeout <duration>', 'connection and greeting timeout').default('30s'))
    .addOption(option('--socket-timeout <duration>', 'idle time per command on outbound connections').default('5m'))
    .addOption(option('--retry-delays <list>', 'the retry ladder').argParser(list).default(DEFAULT_RETRY_DELAYS))
    .addOption(option('--retry-expiry <duration>', 'how long temporary failures are retried before they bounce').default('72h'))
    .addOption(option('--max-in-flight <n>', 'records delivered at once by this process').argParser(integer(1)).default(200))
    .addOption(option('--tracking-keys <file>', 'the tracking keys, a line each: "<id> <base64 secret>", newest first (the tracker\'s file); without it nothing is tracked'))
    .addOption(option('--tracking-url <url>', 'the tracker\'s base URL for accounts and sending domains with no tracking domain, e.g. https://track.example.net').argParser(trackingUrl))
    .addOption(option('--tracking-lifetime <duration>', 'how long tracked links and pixels keep working').default('365d'));
}

function reportFrom(value: string): string {
  if (!/^[^@\s<>]+@([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9-]+$/i.test(value)) throw new InvalidArgumentError(`invalid address "${value}" (expected local@domain)`);
  return value;
}

function trackingUrl(value: string): string {
  const url = URL.parse(value);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.pathname !== '/' || url.search || url.hash) {
    throw new Error(`invalid tracking URL "${value}" (expected http(s)://HOST[:PORT], no path)`);
  }
  return url.origin;
}

export function deliverySettings(flags: DeliveryFlags): DeliverySettings & Pick<DelivererConfig, 'policy' | 'maxInFlight'> {
  return {
    policy: retryPolicy(flags.retryDelays, flags.retryExpiry),
    maxInFlight: flags.maxInFlight,
    dnsServers: flags.dns,
    routes: new Map(flags.route.map(parseStaticRoute)),
    destinations: new DestinationPolicy({ allow: flags.allowDestination, refuse: flags.refuseDestination }),
    smtpPort: flags.smtpPort,
    tlsPolicies: new Map(flags.tlsPolicy.map(parseTlsPolicy)),
    tlsCaFiles: flags.tlsCa,
    mtaSts: flags.mtaSts,
    dane: flags.dane,
    ...(flags.tlsReportOrganization ? { tlsReports: {
      organization: flags.tlsReportOrganization, contact: flags.tlsReportContact ?? `postmaster@${flags.heloName}`, ...(flags.tlsReportFrom ? { from: flags.tlsReportFrom } : {}),
    } } : {}),
    heloName: flags.heloName,
    ...(flags.bounceDomain ? { bounceDomain: flags.bounceDomain } : {}),
    limits: { connectionsPerDestination: flags.connectionsPerDestination, messagesPerConnection: flags.messagesPerConnection, messagesPerSecond: flags.messagesPerSecond },
    ...(flags.shaping ? { shaping: flags.shapingRules ? { rulesFile: flags.shapingRules } : {} } : {}),
    connectTimeoutMs: parseDuration(flags.connectTimeout),
    socketTimeoutMs: parseDuration(flags.socketTimeout),
    tracking: {
      ...(flags.trackingKeys ? { keysFile: flags.trackingKeys } : {}),
      ...(flags.trackingUrl ? { url: flags.trackingUrl } : {}),
      lifetimeSeconds: Math.floor(parseDuration(flags.trackingLifetime) / 1000),
    },
  };
}

export function delivererCommand(): Command {
  const command = addConfigSourceOptions(addDeliveryOptions(new Command('deliverer')
    .description('delivery: fan-out, DKIM, MX, STARTTLS, retries, bounces, suppression, events')), 'folder of SendingDomain manifests and their <name>-dkim Secrets');
  return addOpsOptions(addKafkaOptions(command)
    .addOption(option('--group-id <id>', 'Kafka consumer group of the deliverers').default('mtrelay-deliverer'))
    .addOption(option('--max-size <bytes>', 'largest message (as the relay\'s SIZE)').argParser(integer(1024)).default(25 * 1024 * 1024)), 9091)
    .action((flags: DelivererFlags) => runRole('deliverer', flags.logLevel, async (logger) => (await import('./main.ts')).startDeliverer(delivererConfig(flags), logger)));
}

function delivererConfig(flags: DelivererFlags): DelivererConfig {
  return {
    ...deliverySettings(flags),
    config: configOrigin(flags),
    kafka: kafkaConnection(flags),
    topics: { prefix: flags.topicPrefix, partitions: flags.partitions, replicationFactor: flags.replicationFactor, maxMessageBytes: flags.maxSize },
    createTopics: flags.createTopics,
    groupId: flags.groupId,
    kafkaCompression: flags.kafkaCompression,
    metricsHost: flags.metricsHost,
    metricsPort: flags.metricsPort,
  };
}
