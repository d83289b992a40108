// `mtrelay api`: the HTTP API of an account's data, for API keys with the right permission:
// the suppression list (suppressions/manage) and, with an events database, the events search,
// the message trace and its page (events/read).
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { addKafkaConnectionOptions, addOpsOptions, integer, option, type KafkaConnectionFlags, type OpsFlags } from '../shared/cli-options.ts';
import { addConfigSourceOptions, configOrigin, type ConfigSourceFlags } from '../shared/config/sources.ts';
import { kafkaConnection } from '../shared/kafka/client.ts';
import { runRole } from '../shared/ops/role.ts';

interface ApiFlags extends KafkaConnectionFlags, OpsFlags, ConfigSourceFlags {
  host: string;
  port: number;
  maxBody: number;
  eventsDatabaseUrlFile?: string;
  eventRetention: number;
  eventsGroup: string;
}

export function addApiOptions(command: Command): Command {
  return command.addOption(option('--max-body <bytes>', 'largest API request body (a CSV import of suppressions)').argParser(integer(1024)).default(16 * 1024 * 1024));
}

export function apiCommand(): Command {
  return addOpsOptions(addKafkaConnectionOptions(addApiOptions(addConfigSourceOptions(new Command('api')
    .description('the HTTP API for API keys: the suppression list (suppressions/manage); events search and message trace (events/read)')
    .addOption(option('--host <address>', 'address of the HTTP listener').default('0.0.0.0'))
    .addOption(option('--port <port>', 'HTTP port (0: any free port)').argParser(integer(0, 65535)).default(8081))
    .addOption(option('--events-database-url-file <path>', 'file holding the events database\'s PostgreSQL URI (postgres://user:password@host:5432/db?sslmode=verify-full); without it there is no events search'))
    .addOption(option('--event-retention <days>', 'days the events database keeps events (whole day partitions are dropped)').argParser(integer(1, 3650)).default(10))
    .addOption(option('--events-group <id>', 'Kafka consumer group of the API pods filling the events database').default('mtrelay-events-store')),
  'folder of ApiKey manifests and their Secrets (instead of --config-secret)'))), 9097)
    .action((flags: ApiFlags) => runRole('api', flags.logLevel, async (logger) => (await import('./main.ts')).startApi({
      host: flags.host, port: flags.port, config: configOrigin(flags), kafka: kafkaConnection(flags), topicPrefix: flags.topicPrefix,
      maxBodyBytes: flags.maxBody, eventRetentionDays: flags.eventRetention, eventsGroupId: flags.eventsGroup,
      ...(flags.eventsDatabaseUrlFile ? { eventsDatabaseUrl: readFileSync(flags.eventsDatabaseUrlFile, 'utf8').trim() } : {}),
      metricsHost: flags.metricsHost, metricsPort: flags.metricsPort,
    }, logger)));
}
