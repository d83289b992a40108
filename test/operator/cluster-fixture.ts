// A real API server prepared as a cluster with mtrelay would be: the CRDs, the system and an
// account namespace, the RBAC of operator/rbac.yaml with a kubeconfig per role's service
// account, a DNS server on loopback for the records domains publish, and operator replicas
// started with exactly the operator's privileges.
import path from 'node:path';
import type { KubeApiServer } from '../k8s/api-server.ts';
import { repoRoot } from '../kafka/broker.ts';
import { TestDnsServer } from '../helpers/dns-server.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { startTestApiServer } from './api-server-fixture.ts';

export const SYSTEM = 'mtrelay-system';

export interface Condition { type: string; status: string; reason: string; message: string; observedGeneration?: number }
export interface Status { conditions?: Condition[]; [k: string]: unknown }

export function condition(status: Status | undefined, type: string): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

export { eventually } from '../helpers/eventually.ts';

export class OperatorCluster {
  readonly api: KubeApiServer;
  readonly dns: TestDnsServer;
  readonly dnsAddress: string;
  readonly operatorKubeconfig: string;
  readonly relayKubeconfig: string;
  readonly dispatcherKubeconfig: string;

  private constructor(api: KubeApiServer, dns: TestDnsServer, dnsAddress: string) {
    this.api = api;
    this.dns = dns;
    this.dnsAddress = dnsAddress;
    api.kubectl(['create', 'namespace', SYSTEM]);
    api.kubectl(['create', 'namespace', 'acme']);
    // Every role runs with exactly the privileges operator/rbac.yaml grants it.
    api.kubectl(['apply', '-f', path.join(repoRoot, 'operator', 'rbac.yaml')]);
    this.operatorKubeconfig = api.kubeconfigWithToken(api.serviceAccountToken(SYSTEM, 'mtrelay-operator'), path.join(api.dir, 'operator.kubeconfig'));
    this.relayKubeconfig = api.kubeconfigWithToken(api.serviceAccountToken(SYSTEM, 'mtrelay-relay'), path.join(api.dir, 'relay.kubeconfig'));
    this.dispatcherKubeconfig = api.kubeconfigWithToken(api.serviceAccountToken(SYSTEM, 'mtrelay-dispatcher'), path.join(api.dir, 'dispatcher.kubeconfig'));
  }

  static async start(name: string): Promise<OperatorCluster> {
    const api = await startTestApiServer(name);
    const dns = new TestDnsServer();
    return new OperatorCluster(api, dns, await dns.start());
  }

  /** An operator replica, once it runs (its caches synced, its metrics endpoint known). */
  async startOperator(identity: string, args: string[] = []): Promise<MtrelayProcess> {
    const replica = new MtrelayProcess([
      'operator', '--kubeconfig', this.operatorKubeconfig, '--namespace', SYSTEM, '--identity', identity,
      '--dns', this.dnsAddress, '--spf-include', 'spf.mtrelay.test', '--tracking-cname', 'track.mtrelay.test', '--bounce-domain', 'bounces.mtrelay.test', '--dns-retry-interval', '1s',
      '--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '500ms',
      '--metrics-host', '127.0.0.1', '--metrics-port', '0', ...args,
    ]);
    replica.metricsPort = (await replica.started('operator running')).metricsPort as number;
    return replica;
  }

  getJson<T = { status?: Status; data?: Record<string, string>; spec?: Record<string, unknown> }>(args: string[]): T {
    return JSON.parse(this.api.kubectl(['get', ...args, '-o', 'json'])) as T;
  }

  apply(lines: string[]): void {
    this.api.kubectl(['apply', '-f', '-'], [...lines, ''].join('\n'));
  }

  /** Publishes the records the domain's status asks for, as its owner would. */
  publishRecords(namespace: string, name: string): void {
    const status = this.getJson(['sendingdomain', '-n', namespace, name]).status as { dnsRecords: { type: string; name: string; value: string }[] };
    for (const record of status.dnsRecords) this.dns.set(record.name, record.type === 'CNAME' ? { CNAME: record.value } : { TXT: [record.value] });
  }

  secretValue(namespace: string, secret: string, key = 'apiKey'): string {
    return Buffer.from(this.getJson(['secret', '-n', namespace, secret]).data![key]!, 'base64').toString('utf8');
  }

  async stop(): Promise<void> {
    await this.dns.stop();
    await this.api.stop();
  }
}
