// One place that builds kafkajs clients, so every component uses the same timeouts and
// routes the library's logs through pino.
import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';

export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  logger: Logger;
  /** How long one request may take before it is retried or fails. */
  requestTimeoutMs?: number;
}

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error', [logLevel.WARN]: 'warn', [logLevel.INFO]: 'info', [logLevel.DEBUG]: 'debug',
};

export function createKafka(options: KafkaClientOptions): Kafka {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  const log = options.logger.child({ component: 'kafka' });
  const config: KafkaConfig = {
    clientId: options.clientId,
    brokers: options.brokers,
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
