// `mtrelay standalone`: relay and deliverer in one process with an embedded queue.
import { Command } from 'commander';
import { addApiOptions } from '../api/command.ts';
import { addDeliveryOptions, deliverySettings, type DeliveryFlags } from '../deliverer/command.ts';
import { addWebhookOptions, dispatchPolicy, type WebhookFlags } from '../dispatcher/command.ts';
import { addSmtpOptions, smtpSettings, type SmtpFlags } from '../relay/command.ts';
import { addOpsOptions, integer, option, type OpsFlags } from '../shared/cli-options.ts';
import { runRole } from '../shared/ops/role.ts';
import type { RunningStandalone } from './main.ts';

interface StandaloneFlags extends SmtpFlags, DeliveryFlags, WebhookFlags, OpsFlags {
  state: string;
  resources?: string;
  exampleDomain: string;
  trackerPort: number;
  inboundPort: number;
  apiPort: number;
  maxBody: number;
  eventRetention: number;
}

export function standaloneCommand(): Command {
  const command = new Command('standalone')
    .description('relay and deliverer in one process with an embedded durable queue (no Kafka, no Kubernetes)')
    .addOption(option('--state <dir>', 'folder for the queue, the event log, generated keys and certificate').default('.state/standalone'))
    .addOption(option('--resources <dir>', 'folder of SendingDomain, ApiKey and Secret manifests (default: <state>/resources, created with an example on first start)'))
    .addOption(option('--example-domain <domain>', 'the sending domain of the example created on first start').default('example.com'))
    .addOption(option('--tracker-port <port>', 'HTTP port of the open pixel and click redirects, on --host (0: any free port)').argParser(integer(0, 65535)).default(8080))
    .addOption(option('--api-port <port>', 'HTTP port of the API (events search, the suppression list), on --host (0: any free port, -1: none)').argParser(integer(-1, 65535)).default(8081))
    .addOption(option('--event-retention <days>', 'days the events API keeps events (<state>/events.db)').argParser(integer(1, 3650)).default(10))
    .addOption(option('--inbound-port <port>', 'SMTP port for bounces and complaints to --bounce-domain (its MX), on --host; only with --bounce-domain (0: any free port, -1: none)').argParser(integer(-1, 65535)).default(2526));
  return addOpsOptions(addApiOptions(addWebhookOptions(addDeliveryOptions(addSmtpOptions(command)), true)), 9090)
    .action((flags: StandaloneFlags) => runRole('standalone', flags.logLevel, async (logger) => {
      const { startStandalone } = await import('./main.ts');
      const running = await startStandalone({
        ...smtpSettings(flags),
        ...deliverySettings(flags),
        stateDir: flags.state,
        ...(flags.resources ? { resourcesDir: flags.resources } : {}),
        exampleDomain: flags.exampleDomain.toLowerCase(),
        trackerPort: flags.trackerPort,
        inboundPort: flags.inboundPort,
        apiPort: flags.apiPort,
        apiMaxBodyBytes: flags.maxBody,
        eventRetentionDays: flags.eventRetention,
        webhooks: dispatchPolicy(flags),
        webhooksAllowPrivate: flags.webhookAllowPrivate,
        metricsHost: flags.metricsHost,
        metricsPort: flags.metricsPort,
      }, logger);
      process.stderr.write(welcome(running, flags));
      return running;
    }));
}

function welcome(running: RunningStandalone, flags: StandaloneFlags): string {
  const port = running.server.port('submission');
  const host = flags.host === '0.0.0.0' ? 'localhost' : flags.host;
  if (!running.firstRun) return `\nmtrelay standalone: SMTP on ${host}:${port} (STARTTLS), tracking at ${running.trackingUrl}; events in ${running.eventsLog}\n\n`;
  const { domain, apiKey, dnsRecords } = running.firstRun;
  return [
    '',
    `mtrelay standalone is running. This first start created an example account in ${flags.state}/resources:`,
    `the sending domain ${domain} with a DKIM key, and an API key. Publish these DNS records for ${domain}:`,
    '',
    ...dnsRecords.map((r) => `  ${r.name}  ${r.type}  "${r.value}"`),
    '',
    'Then send a message (the certificate is self-signed, so swaks does not verify it):',
    '',
    `  swaks --to someone@example.org --from you@${domain} \\`,
    '    --auth LOGIN --auth-user smtp_mt_injection \\',
    `    --auth-password ${apiKey} \\`,
    `    --server ${host}:${port} -tls`,
    '',
    `Events are written to ${running.eventsLog}; open and click tracking answers at ${running.trackingUrl}.`,
    '',
    '',
  ].join('\n');
}
