// `mtrelay relay`: the SMTP submission service.
import { Command } from 'commander';
import { addKafkaOptions, addOpsOptions, integer, list, option, type KafkaFlags, type OpsFlags } from '../shared/cli-options.ts';
import { addConfigSourceOptions, configOrigin, type ConfigSourceFlags } from '../shared/config/sources.ts';
import { kafkaConnection } from '../shared/kafka/client.ts';
import { DEFAULT_RETRY_DELAYS } from '../shared/kafka/topics.ts';
import { runRole } from '../shared/ops/role.ts';
import { DEFAULT_AUTH_THROTTLE } from './auth-throttle.ts';
import type { RelayConfig } from './main.ts';
import type { ListenerSpec } from './relay-server.ts';

/** The seed's user name, and the spelling its error table tells users to try. */
export const DEFAULT_AUTH_USERS = ['smtp_mt_injection', 'SMTP_Injection'];
/** A list that replaces the default names when given, and grows when given again. */
const repeatList = (value: string, previous: string[]) => [...(previous === DEFAULT_AUTH_USERS ? [] : previous), ...list(value)];

export interface SmtpFlags {
  host: string;
  hostname: string;
  port: number;
  altPort: number;
  smtpsPort: number;
  tlsCert?: string[];
  tlsKey?: string[];
  authUser: string[];
  allowAuthWithoutTls: boolean;
  maxSize: number;
  maxHeaderSize: number;
  maxRecipients: number;
  maxAttrAddresses: number;
  maxClients: number;
  maxConnectionsPerAddress: number;
  maxInFlightBytes: number;
  commandTimeout: number;
  drainTimeout: number;
  sandboxDomain: string;
  sandboxQuota: number;
  proxyProtocol?: string[];
  earlyTalkerDelay: number;
  authSlowAfter: number;
  authBlockAfter: number;
  authWindow: number;
}

interface RelayFlags extends SmtpFlags, ConfigSourceFlags, KafkaFlags, OpsFlags {
  kafkaTimeout: number;
  kafkaLinger: number;
  retryDelays: string[];
}

/** The submission service's options, shared by `relay` and `standalone`. */
export function addSmtpOptions(command: Command): Command {
  return command
    .addOption(option('--host <address>', 'address the SMTP listeners bind to').default('0.0.0.0'))
    .addOption(option('--hostname <name>', 'name in the greeting and EHLO reply').default('localhost'))
    .addOption(option('--port <port>', 'submission port with STARTTLS (0 picks a free port, -1 disables)').argParser(integer(-1, 65535)).default(587))
    .addOption(option('--alt-port <port>', 'alternate submission port with STARTTLS (-1 disables)').argParser(integer(-1, 65535)).default(2525))
    .addOption(option('--smtps-port <port>', 'implicit TLS port (-1 disables)').argParser(integer(-1, 65535)).default(465))
    .addOption(option('--tls-cert <files>', 'PEM certificate chains, comma-separated (e.g. RSA and ECDSA; each client gets one it supports); reloaded when a file changes').argParser(list))
    .addOption(option('--tls-key <files>', 'PEM private keys of --tls-cert, in the same order; reloaded when a file changes').argParser(list))
    .addOption(option('--auth-user <names>', 'AUTH user names clients may send, compared without regard to case (repeatable)').argParser(repeatList).default(DEFAULT_AUTH_USERS))
    .addOption(option('--allow-auth-without-tls', 'allow AUTH before STARTTLS (for clients without TLS)').default(false))
    .addOption(option('--max-size <bytes>', 'SIZE: largest message accepted').argParser(integer(1024)).default(25 * 1024 * 1024))
    .addOption(option('--max-header-size <bytes>', 'largest header block accepted').argParser(integer(1024)).default(256 * 1024))
    .addOption(option('--max-recipients <n>', 'envelope recipients per message (more get 452 4.5.3)').argParser(integer(1)).default(100))
    .addOption(option('--max-attr-addresses <n>', 'cc + bcc + archive addresses in X-MT-ATTR').argParser(integer(0)).default(1000))
    .addOption(option('--max-clients <n>', 'concurrent SMTP connections per listener').argParser(integer(1)).default(10_000))
    .addOption(option('--max-connections-per-address <n>', 'concurrent SMTP connections from one client address, all listeners together (0: no limit)').argParser(integer(0)).default(500))
    .addOption(option('--max-in-flight-bytes <bytes>', 'message data held at once across all DATA in progress; beyond it 452 4.3.1').argParser(integer(1024 * 1024)).default(160 * 1024 * 1024))
    .addOption(option('--command-timeout <seconds>', 'idle time allowed per command (RFC 5321 recommends 300; never under 60)').argParser(integer(60)).default(300))
    .addOption(option('--drain-timeout <seconds>', 'on SIGTERM, how long open sessions may finish').argParser(integer(0)).default(30))
    .addOption(option('--sandbox-domain <domain>', 'a From domain every key may use; a SendingDomain (in any namespace) must claim it and hold its DKIM key (empty: no sandbox)').default(''))
    .addOption(option('--sandbox-quota <n>', 'messages (one per recipient) per account per 24 hours from the sandbox domain, counted across all relays').argParser(integer(0)).default(50))
    .addOption(option('--proxy-protocol <addresses>', 'accept a PROXY protocol header (v1 or v2) from these load balancer addresses (comma-separated, or "*")').argParser(list))
    .addOption(option('--early-talker-delay <ms>', 'wait before the greeting and refuse clients that talk first (a defence for MX hosts; 0: greet at once)').argParser(integer(0)).default(0))
    .addOption(option('--auth-slow-after <n>', 'failed AUTHs per client address (across all relays) before replies are slowed').argParser(integer(1)).default(DEFAULT_AUTH_THROTTLE.slowAfter))
    .addOption(option('--auth-block-after <n>', 'failed AUTHs per client address (across all relays) before it is refused with 421').argParser(integer(1)).default(DEFAULT_AUTH_THROTTLE.blockAfter))
    .addOption(option('--auth-window <seconds>', 'window in which failed AUTHs are counted').argParser(integer(1)).default(DEFAULT_AUTH_THROTTLE.windowMs / 1000));
}

export function relayCommand(): Command {
  const command = addConfigSourceOptions(addSmtpOptions(new Command('relay')
    .description('SMTP submission service: AUTH with API keys, header checks, durable hand-off to Kafka')),
  'folder of SendingDomain, ApiKey and Secret manifests (reloaded on change)');
  return addOpsOptions(addKafkaOptions(command)
    .addOption(option('--kafka-timeout <ms>', 'how long to wait for the broker before answering 451').argParser(integer(100)).default(10_000))
    .addOption(option('--kafka-linger <ms>', 'how long a message reaching an idle producer waits to share its request with others (fewer, larger requests; adds up to this much to a 250)').argParser(integer(0, 1000)).default(3))
    .addOption(option('--retry-delays <list>', 'delays of the retry ladder topics').argParser(list).default(DEFAULT_RETRY_DELAYS)), 9090)
    // Each role's code is loaded only when that role runs: the CLI of one never carries another's.
    .action((flags: RelayFlags) => runRole('relay', flags.logLevel, async (logger) => (await import('./main.ts')).startRelay(relayConfig(flags), logger)));
}

export function smtpSettings(flags: SmtpFlags): Pick<RelayConfig, 'settings' | 'certificates' | 'authThrottle'> {
  const certs = flags.tlsCert ?? [];
  const keys = flags.tlsKey ?? [];
  if (certs.length !== keys.length) throw new Error('--tls-cert and --tls-key go together: as many keys as certificates, in the same order');
  if (flags.maxInFlightBytes < flags.maxSize) throw new Error(`--max-in-flight-bytes (${flags.maxInFlightBytes}) must hold at least one message of --max-size (${flags.maxSize})`);
  const listeners: ListenerSpec[] = [
    { name: 'submission' as const, port: flags.port, implicitTls: false },
    { name: 'alt' as const, port: flags.altPort, implicitTls: false },
    { name: 'smtps' as const, port: flags.smtpsPort, implicitTls: true },
  ].filter((l) => l.port >= 0);
  const proxy = flags.proxyProtocol;
  return {
    certificates: certs.map((cert, i) => ({ cert, key: keys[i]! })),
    authThrottle: { slowAfter: flags.authSlowAfter, blockAfter: flags.authBlockAfter, windowMs: flags.authWindow * 1000 },
    settings: {
      host: flags.host,
      hostname: flags.hostname,
      listeners,
      authUsers: flags.authUser,
      allowAuthWithoutTls: flags.allowAuthWithoutTls,
      maxMessageBytes: flags.maxSize,
      maxHeaderBytes: flags.maxHeaderSize,
      maxRecipients: flags.maxRecipients,
      maxAttrAddresses: flags.maxAttrAddresses,
      maxClients: flags.maxClients,
      maxConnectionsPerAddress: flags.maxConnectionsPerAddress,
      maxInFlightBytes: flags.maxInFlightBytes,
      commandTimeoutMs: flags.commandTimeout * 1000,
      drainTimeoutMs: flags.drainTimeout * 1000,
      sandboxDomain: flags.sandboxDomain.toLowerCase(),
      sandboxQuota: flags.sandboxQuota,
      proxyProtocol: !proxy ? false : proxy.includes('*') ? true : proxy,
      earlyTalkerDelayMs: flags.earlyTalkerDelay,
    },
  };
}

function relayConfig(flags: RelayFlags): RelayConfig {
  const smtp = smtpSettings(flags);
  // Without a certificate there is no implicit-TLS port to open.
  const listeners = smtp.settings.listeners.filter((l) => !l.implicitTls || smtp.certificates.length);
  return {
    ...smtp,
    settings: { ...smtp.settings, listeners },
    config: configOrigin(flags),
    kafka: kafkaConnection(flags),
    kafkaTimeoutMs: flags.kafkaTimeout,
    kafkaLingerMs: flags.kafkaLinger,
    kafkaCompression: flags.kafkaCompression,
    metricsHost: flags.metricsHost,
    metricsPort: flags.metricsPort,
    topics: { prefix: flags.topicPrefix, partitions: flags.partitions, replicationFactor: flags.replicationFactor, retryDelays: flags.retryDelays },
    createTopics: flags.createTopics,
  };
}
