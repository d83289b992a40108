// `mtrelay inbound`: the MX of the bounce domains. Bounces (DSNs) to the deliverer's VERP return
// paths and feedback-loop reports (ARF) become out_of_band and spam_complaint events and
// suppressions, and mail to the unsubscribe address (List-Unsubscribe's mailto) unsubscribes;
// mail to any other address is refused.
import { Command } from 'commander';
import { addKafkaConnectionOptions, addOpsOptions, integer, list, option, type KafkaConnectionFlags, type OpsFlags } from '../shared/cli-options.ts';
import { kafkaConnection } from '../shared/kafka/client.ts';
import { runRole } from '../shared/ops/role.ts';
import type { InboundConfig } from './main.ts';

interface InboundFlags extends KafkaConnectionFlags, OpsFlags {
  host: string;
  port: number;
  hostname: string;
  bounceDomain: string[];
  maxSize: number;
  tlsCert?: string[];
  tlsKey?: string[];
  trackingKeys?: string;
}

export function inboundCommand(): Command {
  return addOpsOptions(addKafkaConnectionOptions(new Command('inbound')
    .description('the bounce domains\' MX: later bounces and spam complaints become events and suppressions')
    .addOption(option('--host <address>', 'address of the SMTP listener').default('0.0.0.0'))
    .addOption(option('--port <port>', 'SMTP port (the chart\'s Service maps 25 to it; 0: any free port)').argParser(integer(0, 65535)).default(2525))
    .addOption(option('--hostname <name>', 'name in the greeting and EHLO reply').default('localhost'))
    .addOption(option('--bounce-domain <domains>', 'the deliverer\'s --bounce-domain (comma-separated): mail is taken for b+…@ and fbl[+<domain>]@ of these only').argParser(list).makeOptionMandatory())
    .addOption(option('--max-size <bytes>', 'largest report taken').argParser(integer(1024)).default(10 * 1024 * 1024))
    .addOption(option('--tls-cert <files>', 'PEM certificate chains for STARTTLS, comma-separated; without one STARTTLS is not offered').argParser(list))
    .addOption(option('--tls-key <files>', 'PEM private keys of --tls-cert, in the same order').argParser(list))
    .addOption(option('--tracking-keys <file>', 'the tracking keys file (as the tracker\'s): mail to unsubscribe@ the bounce domains is taken and unsubscribes the recipient its subject\'s token names'))), 9096)
    .action((flags: InboundFlags) => runRole('inbound', flags.logLevel, async (logger) => (await import('./main.ts')).startInbound(inboundConfig(flags), logger)));
}

function inboundConfig(flags: InboundFlags): InboundConfig {
  const certs = flags.tlsCert ?? [];
  const keys = flags.tlsKey ?? [];
  if (certs.length !== keys.length) throw new Error('--tls-cert and --tls-key go together: as many keys as certificates, in the same order');
  return {
    host: flags.host, port: flags.port, hostname: flags.hostname, bounceDomains: flags.bounceDomain, maxMessageBytes: flags.maxSize,
    tls: certs.map((cert, i) => ({ cert, key: keys[i]! })), kafka: kafkaConnection(flags), topicPrefix: flags.topicPrefix,
    ...(flags.trackingKeys ? { trackingKeysFile: flags.trackingKeys } : {}),
    metricsHost: flags.metricsHost, metricsPort: flags.metricsPort,
  };
}
