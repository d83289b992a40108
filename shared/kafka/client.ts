// One place that builds kafkajs clients, so every component uses the same timeouts, the same
// TLS and SASL settings (Strimzi TLS and SCRAM listeners, MSK, Confluent Cloud), and routes
// the library's logs through pino.
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
// Every client can read what any producer compressed: the zstd codec is registered with kafkajs.
import './compression.ts';

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';
export const SASL_MECHANISMS: readonly SaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512'];

/** How to reach the brokers: addresses, and TLS and SASL when the listener asks for them. */
export interface KafkaConnection {
  brokers: string[];
  /** TLS to the brokers; the files are PEM. Without `caFile` the system's roots are trusted. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** The password is read from a file (a mounted Secret), never taken from a flag. */
  sasl?: { mechanism: SaslMechanism; username: string; passwordFile: string };
}

export interface KafkaClientOptions {
  connection: KafkaConnection;
  clientId: string;
  logger: Logger;
  /** How long one request may take before it is retried or fails. */
  requestTimeoutMs?: number;
}

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error', [logLevel.WARN]: 'warn', [logLevel.INFO]: 'info', [logLevel.DEBUG]: 'debug',
};

function ssl(tls: KafkaConnection['tls']): KafkaConfig['ssl'] {
  if (!tls) return undefined;
  const read = (file: string) => readFileSync(file, 'utf8');
  return {
    rejectUnauthorized: true,
    ...(tls.caFile ? { ca: [read(tls.caFile)] } : {}),
    ...(tls.certFile && tls.keyFile ? { cert: read(tls.certFile), key: read(tls.keyFile) } : {}),
  };
}

function sasl(options: KafkaConnection['sasl']): SASLOptions | undefined {
  if (!options) return undefined;
  const password = readFileSync(options.passwordFile, 'utf8').replace(/\r?\n$/, '');
  return { mechanism: options.mechanism, username: options.username, password } as SASLOptions;
}

export function createKafka(options: KafkaClientOptions): Kafka {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  const log = options.logger.child({ component: 'kafka' });
  const { connection } = options;
  const config: KafkaConfig = {
    clientId: options.clientId,
    brokers: connection.brokers,
    ...(connection.tls ? { ssl: ssl(connection.tls) } : {}),
    ...(connection.sasl ? { sasl: sasl(connection.sasl) } : {}),
    connectionTimeout: 3000,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 5 },
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...rest } = entry.log;
      // Connection errors while the broker is away are expected and reported by our own metrics.
      // Bounded retries on the idempotent producer are deliberate (see SubmissionProducer).
      const expected = message.startsWith('Limiting retries for the idempotent producer');
      const level = expected ? 'debug' : entry.level === logLevel.ERROR ? 'warn' : (LEVELS[entry.level] ?? 'info');
      log[level]({ namespace: entry.namespace, ...rest }, message);
    },
  };
  return new Kafka(config);
}

export function parseBrokers(list: string): string[] {
  const brokers = list.split(',').map((b) => b.trim()).filter(Boolean);
  for (const broker of brokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(broker) && !/^\[[0-9a-f:]+\]:\d{1,5}$/i.test(broker)) {
      throw new Error(`invalid Kafka broker address "${broker}" (expected HOST:PORT)`);
    }
  }
  if (brokers.length === 0) throw new Error('no Kafka broker given (expected HOST:PORT[,HOST:PORT…])');
  return brokers;
}

/** The connection the --kafka* flags describe; refuses flags that only make sense together when one is missing. */
export function kafkaConnection(flags: {
  kafka: string; kafkaTls?: boolean; kafkaTlsCa?: string; kafkaTlsCert?: string; kafkaTlsKey?: string;
  kafkaSaslMechanism?: string; kafkaSaslUsername?: string; kafkaSaslPasswordFile?: string;
}): KafkaConnection {
  if (Boolean(flags.kafkaTlsCert) !== Boolean(flags.kafkaTlsKey)) throw new Error('--kafka-tls-cert and --kafka-tls-key go together');
  const sasl = [flags.kafkaSaslMechanism, flags.kafkaSaslUsername, flags.kafkaSaslPasswordFile];
  if (sasl.some(Boolean) && !sasl.every(Boolean)) {
    throw new Error('SASL needs --kafka-sasl-mechanism, --kafka-sasl-username and --kafka-sasl-password-file together');
  }
  const tls = flags.kafkaTls || flags.kafkaTlsCa || flags.kafkaTlsCert;
  return {
    brokers: parseBrokers(flags.kafka),
    ...(tls ? { tls: {
      ...(flags.kafkaTlsCa ? { caFile: flags.kafkaTlsCa } : {}),
      ...(flags.kafkaTlsCert && flags.kafkaTlsKey ? { certFile: flags.kafkaTlsCert, keyFile: flags.kafkaTlsKey } : {}),
    } } : {}),
    ...(flags.kafkaSaslMechanism ? { sasl: {
      mechanism: flags.kafkaSaslMechanism as SaslMechanism, username: flags.kafkaSaslUsername!, passwordFile: flags.kafkaSaslPasswordFile!,
    } } : {}),
  };
}
