// `mtrelay dispatcher`: posts the events of mtrelay.events to each account's webhooks.
import { Command } from 'commander';
import { addKafkaConnectionOptions, addOpsOptions, integer, option, type KafkaConnectionFlags, type OpsFlags } from '../shared/cli-options.ts';
import { addConfigSourceOptions, configOrigin, type ConfigSourceFlags } from '../shared/config/sources.ts';
import { parseDuration } from '../shared/duration.ts';
import { kafkaConnection } from '../shared/kafka/client.ts';
import { runRole } from '../shared/ops/role.ts';
import type { DispatcherConfig } from './main.ts';
import type { DispatchPolicy } from './webhook-queue.ts';

export interface WebhookFlags {
  batchEvents: number;
  batchBytes: number;
  batchLinger: string;
  webhookRetryFirst: string;
  webhookRetryMax: string;
  webhookGiveUp: string;
  webhookBacklog: number;
  webhookAllowPrivate: boolean;
}

interface DispatcherFlags extends WebhookFlags, ConfigSourceFlags, KafkaConnectionFlags, OpsFlags {
  groupId: string;
  maxInFlight: number;
}

/**
 * Batching, retries and reach of webhook posts, shared by `dispatcher` and `standalone`. Private
 * addresses are allowed by default only where everything runs on one machine (standalone).
 */
export function addWebhookOptions(command: Command, allowPrivateByDefault = false): Command {
  return command
    .addOption(option('--batch-events <n>', 'events per webhook batch at most').argParser(integer(1, 10_000)).default(100))
    .addOption(option('--batch-bytes <n>', 'JSON bytes per webhook batch at most (a single larger event goes alone)').argParser(integer(1024)).default(1024 * 1024))
    .addOption(option('--batch-linger <duration>', 'how long a batch waits for more events').default('1s'))
    .addOption(option('--webhook-retry-first <duration>', 'gap before the first retry of a failed batch; each next gap doubles').default('5s'))
    .addOption(option('--webhook-retry-max <duration>', 'longest gap between retries').default('10m'))
    .addOption(option('--webhook-give-up <duration>', 'a batch failing this long is dropped (logged, counted, shown in the Webhook\'s status)').default('8h'))
    .addOption(option('--webhook-backlog <n>', 'events held per webhook at most; the oldest are dropped beyond').argParser(integer(100)).default(50_000))
    .addOption(option('--webhook-allow-private', 'let webhook and OAuth2 token URLs reach loopback, private and link-local addresses (refused otherwise: a tenant\'s URL must not reach the cluster\'s network)').default(allowPrivateByDefault))
    .addOption(option('--no-webhook-allow-private', 'refuse loopback, private and link-local addresses for webhooks').hideHelp());
}

export function dispatchPolicy(flags: WebhookFlags): DispatchPolicy {
  return {
    maxBatchEvents: flags.batchEvents,
    maxBatchBytes: flags.batchBytes,
    lingerMs: parseDuration(flags.batchLinger),
    firstRetryMs: parseDuration(flags.webhookRetryFirst),
    maxRetryMs: parseDuration(flags.webhookRetryMax),
    giveUpAfterMs: parseDuration(flags.webhookGiveUp),
    maxBacklog: flags.webhookBacklog,
  };
}

export function dispatcherCommand(): Command {
  // The Kafka connection only: the dispatcher consumes mtrelay.events and creates no topic.
  const command = addConfigSourceOptions(addWebhookOptions(new Command('dispatcher')
    .description('posts events to webhooks: batched, signed, retried in order per webhook')), 'folder of Webhook manifests and their Secrets');
  return addOpsOptions(addKafkaConnectionOptions(command)
    .addOption(option('--group-id <id>', 'Kafka consumer group of the dispatchers').default('mtrelay-dispatcher'))
    .addOption(option('--max-in-flight <n>', 'events held for webhooks before consuming waits').argParser(integer(1)).default(200_000)), 9095)
    .action((flags: DispatcherFlags) => runRole('dispatcher', flags.logLevel, async (logger) => (await import('./main.ts')).startDispatcher(dispatcherConfig(flags), logger)));
}

function dispatcherConfig(flags: DispatcherFlags): DispatcherConfig {
  return {
    config: configOrigin(flags),
    kafka: kafkaConnection(flags),
    topicPrefix: flags.topicPrefix,
    groupId: flags.groupId,
    policy: dispatchPolicy(flags),
    allowPrivate: flags.webhookAllowPrivate,
    maxInFlight: flags.maxInFlight,
    metricsHost: flags.metricsHost,
    metricsPort: flags.metricsPort,
  };
}
