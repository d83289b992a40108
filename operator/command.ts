// `mtrelay operator`: reconciles SendingDomain and ApiKey resources into the config Secrets
// that relay and deliverer pods watch.
import { hostname } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { addOpsOptions, list, option, type OpsFlags } from '../shared/cli-options.ts';
import { parseDuration } from '../shared/duration.ts';
import { runRole } from '../shared/ops/role.ts';
import type { OperatorConfig } from './main.ts';

interface OperatorFlags extends OpsFlags {
  kubeconfig?: string;
  namespace: string;
  relayConfigSecret: string;
  delivererConfigSecret: string;
  dispatcherConfigSecret: string;
  leaseName: string;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  identity: string;
  dns?: string[];
  requireDnsVerification: boolean;
  spfInclude?: string;
  trackingCname?: string;
  bounceDomain?: string;
  dnsCheckInterval: number;
  dnsRetryInterval: number;
  relistInterval: number;
  tlsTicketKeyRotation: number;
}

const duration = (value: string): number => {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
};

export function operatorCommand(): Command {
  return addOpsOptions(new Command('operator')
    .description('reconciles SendingDomain and ApiKey resources into the config Secrets relay and deliverer pods watch')
    .addOption(option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG, ~/.kube/config, or the pod\'s service account)'))
    .addOption(option('--namespace <namespace>', 'namespace of the config Secrets and the leader Lease').default(process.env.POD_NAMESPACE ?? 'mtrelay-system'))
    .addOption(option('--relay-config-secret <name>', 'Secret (set) with the relay\'s config: key hashes and domains, no private keys').default('mtrelay-relay-config'))
    .addOption(option('--deliverer-config-secret <name>', 'Secret (set) with the deliverer\'s config, DKIM keys included').default('mtrelay-deliverer-config'))
    .addOption(option('--dispatcher-config-secret <name>', 'Secret (set) with the dispatcher\'s config: webhooks and their credentials').default('mtrelay-dispatcher-config'))
    .addOption(option('--lease-name <name>', 'Lease the replicas elect their leader on').default('mtrelay-operator'))
    .addOption(option('--lease-duration <duration>', 'how long a leader\'s Lease holds without renewal').argParser(duration).default(15_000, '15s'))
    .addOption(option('--renew-deadline <duration>', 'a leader that cannot renew for this long stops leading').argParser(duration).default(10_000, '10s'))
    .addOption(option('--retry-period <duration>', 'how often the Lease is renewed or tried').argParser(duration).default(2000, '2s'))
    .addOption(option('--identity <id>', 'this replica\'s name in the Lease').default(process.env.POD_NAME ?? `${hostname()}-${process.pid}`))
    .addOption(option('--dns <servers>', 'DNS resolvers for verifying records, HOST[:PORT][,…] (default: the system\'s)').argParser(list))
    .addOption(option('--no-require-dns-verification', 'let domains send before their DKIM record is found in DNS (development only)'))
    .addOption(option('--spf-include <domain>', 'SPF hint in status: v=spf1 include:<domain> ~all (checked when set)'))
    .addOption(option('--tracking-cname <host>', 'where tracking domains must point (CNAME; checked when set)'))
    .addOption(option('--bounce-domain <domain>', 'the deliverer\'s bounce domain: each SendingDomain\'s status names its feedback-loop address, fbl+<domain>@<this>'))
    .addOption(option('--dns-check-interval <duration>', 'how often verified domains are checked again').argParser(duration).default(3_600_000, '1h'))
    .addOption(option('--dns-retry-interval <duration>', 'how often unverified domains are checked').argParser(duration).default(60_000, '1m'))
    .addOption(option('--relist-interval <duration>', 'full relist of every informer this often').argParser(duration).default(300_000, '5m'))
    .addOption(option('--tls-ticket-key-rotation <duration>', 'how long the relays\' shared TLS session ticket key is used before a new one replaces it').argParser(duration).default(12 * 3_600_000, '12h')), 9092)
    .action((flags: OperatorFlags) => runRole('operator', flags.logLevel, async (logger) => (await import('./main.ts')).startOperator(operatorConfig(flags), logger, () => process.exit(1))));
}

/** The sets must not share a Secret: NAME or NAME-<n> of one may not be another's. */
function checkSetNames(sets: Record<string, string>): void {
  const overlaps = (a: string, b: string) => a === b || new RegExp(`^${a.replace(/[.-]/g, '\\$&')}-\\d+$`).test(b);
  const named = Object.entries(sets);
  for (const [flagA, a] of named) {
    for (const [flagB, b] of named) {
      if (flagA !== flagB && overlaps(a, b)) {
        throw new InvalidArgumentError(`--${flagA} ${a} and --${flagB} ${b} would share Secrets; choose names that are not each other's pieces`);
      }
    }
  }
}

/** As client-go: a leader must notice it cannot renew before a standby may take over. */
function checkLeaseTimes(flags: OperatorFlags): void {
  if (!(flags.retryPeriod < flags.renewDeadline && flags.renewDeadline < flags.leaseDuration)) {
    throw new InvalidArgumentError('--retry-period < --renew-deadline < --lease-duration is required, so that two replicas never lead at once');
  }
}

function operatorConfig(flags: OperatorFlags): OperatorConfig {
  checkSetNames({ 'relay-config-secret': flags.relayConfigSecret, 'deliverer-config-secret': flags.delivererConfigSecret, 'dispatcher-config-secret': flags.dispatcherConfigSecret });
  checkLeaseTimes(flags);
  return {
    ...(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {}),
    identity: flags.identity,
    targets: { namespace: flags.namespace, relaySecret: flags.relayConfigSecret, delivererSecret: flags.delivererConfigSecret, dispatcherSecret: flags.dispatcherConfigSecret, ticketKeyRotationMs: flags.tlsTicketKeyRotation },
    leaseNamespace: flags.namespace,
    leaseName: flags.leaseName,
    leaseDurationMs: flags.leaseDuration,
    renewDeadlineMs: flags.renewDeadline,
    retryPeriodMs: flags.retryPeriod,
    policy: {
      requireDnsVerification: flags.requireDnsVerification,
      ...(flags.spfInclude ? { spfInclude: flags.spfInclude } : {}),
      ...(flags.trackingCname ? { trackingCname: flags.trackingCname } : {}),
      ...(flags.bounceDomain ? { bounceDomain: flags.bounceDomain } : {}),
      verifiedCheckMs: flags.dnsCheckInterval,
      unverifiedCheckMs: flags.dnsRetryInterval,
    },
    dnsServers: flags.dns ?? [],
    relistMs: flags.relistInterval,
    metricsHost: flags.metricsHost,
    metricsPort: flags.metricsPort,
  };
}
