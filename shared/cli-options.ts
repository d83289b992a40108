// Every flag of every subcommand is also an environment variable MTRELAY_<FLAG>
// (--tls-cert → MTRELAY_TLS_CERT), which is how the Helm chart configures pods.
import { InvalidArgumentError, Option, type Command } from 'commander';

export function envName(flag: string): string {
  return `MTRELAY_${flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`;
}

/** An option whose value may also come from MTRELAY_<FLAG>. */
export function option(flags: string, description: string): Option {
  const long = flags.split(/[ ,]+/).find((f) => f.startsWith('--'));
  if (!long) throw new Error(`option ${flags} has no long form`);
  return new Option(flags, description).env(envName(long));
}

export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

export function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Flags of the operations endpoint and logs, the same for every role. */
export interface OpsFlags {
  metricsHost: string;
  metricsPort: number;
  logLevel: string;
}

export function addOpsOptions(command: Command, defaultPort: number): Command {
  return command
    .addOption(option('--metrics-host <address>', 'address of /metrics, /healthz and /readyz').default('0.0.0.0'))
    .addOption(option('--metrics-port <port>', 'port of /metrics, /healthz and /readyz').argParser(integer(0, 65535)).default(defaultPort))
    .addOption(option('--log-level <level>', 'fatal, error, warn, info, debug').default('info'));
}

/** Codecs of --kafka-compression (shared/kafka/compression.ts). */
export const KAFKA_COMPRESSION_NAMES = ['none', 'gzip', 'zstd'] as const;
export type KafkaCompression = (typeof KAFKA_COMPRESSION_NAMES)[number];

/** Flags of the Kafka connection, the same for every role that uses Kafka. */
export interface KafkaConnectionFlags {
  kafka: string;
  kafkaTls: boolean;
  kafkaTlsCa?: string;
  kafkaTlsCert?: string;
  kafkaTlsKey?: string;
  kafkaSaslMechanism?: string;
  kafkaSaslUsername?: string;
  kafkaSaslPasswordFile?: string;
  topicPrefix: string;
}

/** And of the records and topics of the roles that carry messages (relay, deliverer). */
export interface KafkaFlags extends KafkaConnectionFlags {
  kafkaCompression: KafkaCompression;
  partitions: number;
  replicationFactor: number;
  createTopics: boolean;
}

export function addKafkaConnectionOptions(command: Command): Command {
  return command
    .addOption(option('--kafka <brokers>', 'Kafka bootstrap brokers, HOST:PORT[,HOST:PORT…]').makeOptionMandatory())
    .addOption(option('--kafka-tls', 'TLS to the brokers (implied by the other --kafka-tls-* flags)').default(false))
    .addOption(option('--kafka-tls-ca <file>', 'PEM CA certificates the brokers\' certificates are checked against (default: the system\'s roots)'))
    .addOption(option('--kafka-tls-cert <file>', 'PEM client certificate, for listeners that require one (mutual TLS)'))
    .addOption(option('--kafka-tls-key <file>', 'PEM private key of --kafka-tls-cert'))
    .addOption(option('--kafka-sasl-mechanism <mechanism>', 'SASL: plain, scram-sha-256 or scram-sha-512').choices(['plain', 'scram-sha-256', 'scram-sha-512']))
    .addOption(option('--kafka-sasl-username <name>', 'SASL user name'))
    .addOption(option('--kafka-sasl-password-file <file>', 'file holding the SASL password (a mounted Secret)'))
    .addOption(option('--topic-prefix <prefix>', 'prefix of every Kafka topic').default('mtrelay'));
}

export function addKafkaOptions(command: Command): Command {
  return addKafkaConnectionOptions(command)
    .addOption(option('--kafka-compression <codec>', 'compression of the records this role produces that carry messages (readers take any): none, gzip or zstd').choices(KAFKA_COMPRESSION_NAMES).default('none'))
    .addOption(option('--partitions <n>', 'partitions of topics this role creates').argParser(integer(1)).default(12))
    .addOption(option('--replication-factor <n>', 'replication of topics this role creates (-1: broker default)').argParser(integer(-1)).default(-1))
    .addOption(option('--no-create-topics', 'never create topics (they are made elsewhere, e.g. Strimzi KafkaTopic resources); only check them'));
}
