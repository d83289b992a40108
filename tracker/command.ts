// `mtrelay tracker`: the open pixel and click redirects behind signed tokens; engagement events to Kafka.
import { Command } from 'commander';
import { addKafkaConnectionOptions, addOpsOptions, integer, list, option, type KafkaConnectionFlags, type OpsFlags } from '../shared/cli-options.ts';
import { kafkaConnection } from '../shared/kafka/client.ts';
import { runRole } from '../shared/ops/role.ts';
import type { TrackerConfig } from './main.ts';

interface TrackerFlags extends KafkaConnectionFlags, OpsFlags {
  host: string;
  port: number;
  trackingKeys: string;
  trustedProxies: string[];
}

export function trackerCommand(): Command {
  // The Kafka connection only: the tracker creates no topic and produces no message records.
  return addOpsOptions(addKafkaConnectionOptions(new Command('tracker')
    .description('open pixel and click redirects behind signed tokens; engagement events to Kafka')
    .addOption(option('--host <address>', 'address of the HTTP listener').default('0.0.0.0'))
    .addOption(option('--port <port>', 'HTTP port (0: any free port)').argParser(integer(0, 65535)).default(8080))
    .addOption(option('--tracking-keys <file>', 'the tracking keys, a line each: "<id> <base64 secret>", newest first (a mounted Secret; re-read when it changes)').makeOptionMandatory())
    .addOption(option('--trusted-proxies <cidrs>', 'addresses or CIDRs of proxies (Ingress controller, load balancer) whose X-Forwarded-For gives the reader\'s address').argParser(list).default([]))), 9094)
    .action((flags: TrackerFlags) => runRole('tracker', flags.logLevel, async (logger) => (await import('./main.ts')).startTracker(trackerConfig(flags), logger)));
}

function trackerConfig(flags: TrackerFlags): TrackerConfig {
  return {
    host: flags.host,
    port: flags.port,
    keysFile: flags.trackingKeys,
    trustedProxies: flags.trustedProxies,
    kafka: kafkaConnection(flags),
    topicPrefix: flags.topicPrefix,
    metricsHost: flags.metricsHost,
    metricsPort: flags.metricsPort,
  };
}
