// SendingDomain: makes sure a DKIM key exists in the domain's own Secret (a new one when the
// selector or key size changes), publishes in status the DNS records to create, checks them
// in DNS on a schedule, and reports KeyReady, DNSVerified and Ready. Level-triggered: each
// reconcile reads the resource and its Secret and makes the status right.
import type { Logger } from 'pino';
import { DKIM_SECRET_KEY, canonicalJson, dkimSecretName } from '../shared/config/compiler.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { Informer } from '../shared/kube/informer.ts';
import { conditionTrue, setConditions, type ConditionInput } from './conditions.ts';
import { dkimPublicKeyData, dkimRecordValue, generateDkimKey, keyBits } from './dkim-keys.ts';
import type { DnsChecker, RecordCheck } from './dns-check.ts';
import type { EventRecorder } from './events.ts';
import {
  FIELD_MANAGER, GROUP_VERSION, MANAGED_BY, isOwnedBy, ownerReference, paths, splitKey,
  type DnsRecord, type SecretObject, type SendingDomainObject, type SendingDomainStatus,
} from './resources.ts';
import type { ReconcileResult } from './work-queue.ts';

export interface DomainPolicy {
  /** Domains join the config only once their DKIM record was seen in DNS (proof of ownership). */
  requireDnsVerification: boolean;
  /** SPF hint: `v=spf1 include:<this> ~all`; no SPF record is asked for when unset. */
  spfInclude?: string;
  /** Where tracking domains should point (CNAME); no CNAME is asked for when unset. */
  trackingCname?: string;
  /** How often records are checked again once verified, and while they are not. */
  verifiedCheckMs: number;
  unverifiedCheckMs: number;
}

export interface SendingDomainControllerOptions {
  client: KubeClient;
  domains: Informer<SendingDomainObject>;
  secrets: Informer<SecretObject>;
  dns: DnsChecker;
  events: EventRecorder;
  policy: DomainPolicy;
  logger: Logger;
}

const SELECTOR_ANNOTATION = 'mtrelay.dev/dkim-selector';
const DEFAULT_SELECTOR = 'mtrelay';
const DEFAULT_KEY_SIZE = 2048;

const target = (domain: SendingDomainObject) => ({ apiVersion: GROUP_VERSION, kind: 'SendingDomain', metadata: domain.metadata });

/** Earliest claim wins: the oldest resource for a domain, then namespace/name order. */
export function domainClaimant(domains: readonly SendingDomainObject[], domain: string): SendingDomainObject | undefined {
  return domains.filter((d) => d.spec.domain === domain)
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '')
      || `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))[0];
}

export class SendingDomainController {
  readonly #o: SendingDomainControllerOptions;
  /** When each domain's records were last looked up, and what was found (not written to status every time). */
  readonly #lastCheck = new Map<string, { at: number; records: string; results: RecordCheck[] }>();

  constructor(options: SendingDomainControllerOptions) {
    this.#o = options;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const domain = this.#o.domains.get(name, namespace);
    if (!domain) {
      this.#lastCheck.delete(key); // the owned Secret goes with it (ownerReference)
      return;
    }
    const selector = domain.spec.dkim?.selector ?? DEFAULT_SELECTOR;
    const keySize = domain.spec.dkim?.keySize ?? DEFAULT_KEY_SIZE;
    const dkim = await this.#ensureKey(domain, selector, keySize);
    const records = this.#desiredRecords(domain, selector, dkim.publicKeyData);
    const { results, nextCheckMs } = await this.#checkDns(key, records, conditionTrue(domain.status?.conditions, 'DNSVerified'));
    const dnsRecords: DnsRecord[] = records.map((r, i) => ({ ...r, verified: results[i] === 'found' }));
    const dkimFound = results[0] === 'found';
    const allFound = results.every((r) => r === 'found');
    const verifiedAt = domain.status?.verifiedAt ?? (dkimFound ? new Date().toISOString() : undefined);
    const claimant = domainClaimant(this.#o.domains.list(), domain.spec.domain);
    const claimedElsewhere = claimant && claimant.metadata.uid !== domain.metadata.uid ? claimant : undefined;

    const conditions: ConditionInput[] = [
      dkim.problem
        ? { type: 'KeyReady', status: 'False', reason: 'InvalidKeySecret', message: dkim.problem }
        : { type: 'KeyReady', status: 'True', reason: dkim.userSupplied ? 'UserSuppliedKey' : 'KeyGenerated',
          message: `${dkim.bits}-bit RSA key in Secret ${dkimSecretName(domain)}, selector ${selector}` },
      this.#dnsCondition(dnsRecords, results),
      this.#readyCondition(domain, { keyProblem: dkim.problem, verified: Boolean(verifiedAt), claimedElsewhere }),
    ];
    const status: SendingDomainStatus = {
      observedGeneration: domain.metadata.generation,
      dkim: { selector, keySize: dkim.bits, secretName: dkimSecretName(domain) },
      dnsRecords,
      ...(verifiedAt ? { verifiedAt } : {}),
      conditions: setConditions(domain.status?.conditions, conditions, domain.metadata.generation),
    };
    await this.#writeStatus(domain, status, { dkimFound, allFound, claimedElsewhere });
    return { requeueAfterMs: nextCheckMs };
  }

  async #ensureKey(domain: SendingDomainObject, selector: string, keySize: number): Promise<{ publicKeyData: string; bits: number; userSupplied: boolean; problem?: string }> {
    const { namespace } = domain.metadata;
    const secretName = dkimSecretName(domain);
    const secret = this.#o.secrets.get(secretName, namespace);
    const pem = secret?.data?.[DKIM_SECRET_KEY] ? Buffer.from(secret.data[DKIM_SECRET_KEY], 'base64').toString('utf8') : undefined;
    if (secret && !isOwnedBy(secret, domain)) {
      // A key the user brought (as in standalone mode): used as it is, never replaced.
      try {
        return { publicKeyData: dkimPublicKeyData(pem ?? ''), bits: keyBits(pem ?? ''), userSupplied: true };
      } catch {
        return { publicKeyData: '', bits: 0, userSupplied: true, problem: `Secret ${secretName} is not managed by mtrelay and has no PEM RSA key "${DKIM_SECRET_KEY}"` };
      }
    }
    const current = secret?.metadata.annotations?.[SELECTOR_ANNOTATION];
    if (pem && current === selector && keyBits(pem) === keySize) return { publicKeyData: dkimPublicKeyData(pem), bits: keySize, userSupplied: false };

    const { privateKey } = await generateDkimKey(keySize);
    await this.#o.client.apply(paths.secrets(namespace, secretName), {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: {
        name: secretName, namespace, labels: { ...MANAGED_BY, 'mtrelay.dev/sending-domain': domain.metadata.name },
        annotations: { [SELECTOR_ANNOTATION]: selector }, ownerReferences: [ownerReference({ kind: 'SendingDomain', metadata: domain.metadata })],
      },
      data: { [DKIM_SECRET_KEY]: Buffer.from(privateKey).toString('base64') },
    }, FIELD_MANAGER);
    const rotated = Boolean(secret);
    this.#o.events.normal(target(domain), rotated ? 'KeyRotated' : 'KeyGenerated',
      `${rotated ? 'new' : 'generated a'} ${keySize}-bit DKIM key for selector ${selector} in Secret ${secretName}; publish the DKIM record from status.dnsRecords`);
    this.#o.logger.info({ domain: domain.spec.domain, resource: `${namespace}/${domain.metadata.name}`, selector, rotated }, 'DKIM key written');
    return { publicKeyData: dkimPublicKeyData(privateKey), bits: keySize, userSupplied: false };
  }

  #desiredRecords(domain: SendingDomainObject, selector: string, publicKeyData: string): Omit<DnsRecord, 'verified'>[] {
    const { spfInclude, trackingCname } = this.#o.policy;
    return [
      { purpose: 'dkim', type: 'TXT', name: `${selector}._domainkey.${domain.spec.domain}`, value: dkimRecordValue(publicKeyData) },
      ...(spfInclude ? [{ purpose: 'spf' as const, type: 'TXT' as const, name: domain.spec.domain, value: `v=spf1 include:${spfInclude} ~all` }] : []),
      ...(trackingCname && domain.spec.trackingDomain
        ? [{ purpose: 'tracking' as const, type: 'CNAME' as const, name: domain.spec.trackingDomain, value: trackingCname }] : []),
    ];
  }

  /** Looks records up when they changed or their time has come; otherwise reuses the last results. */
  async #checkDns(key: string, records: Omit<DnsRecord, 'verified'>[], wasVerified: boolean): Promise<{ results: RecordCheck[]; nextCheckMs: number }> {
    const { verifiedCheckMs, unverifiedCheckMs } = this.#o.policy;
    const fingerprint = JSON.stringify(records);
    const last = this.#lastCheck.get(key);
    const interval = wasVerified ? verifiedCheckMs : unverifiedCheckMs;
    if (last && last.records === fingerprint && Date.now() - last.at < interval) {
      return { results: last.results, nextCheckMs: Math.max(0, last.at + interval - Date.now()) };
    }
    const results = await Promise.all(records.map((r) => this.#o.dns.check(r)));
    const verified = results.every((r) => r === 'found');
    this.#lastCheck.set(key, { at: Date.now(), records: fingerprint, results });
    return { results, nextCheckMs: verified ? verifiedCheckMs : unverifiedCheckMs };
  }

  #dnsCondition(records: DnsRecord[], results: RecordCheck[]): ConditionInput {
    if (results.includes('lookup_failed')) {
      return { type: 'DNSVerified', status: 'Unknown', reason: 'LookupFailed', message: 'DNS lookups failed (SERVFAIL or timeout); checking again later' };
    }
    const missing = records.filter((r) => !r.verified);
    if (!missing.length) return { type: 'DNSVerified', status: 'True', reason: 'RecordsFound', message: `all ${records.length} DNS records are published` };
    return {
      type: 'DNSVerified', status: 'False', reason: 'RecordsMissing',
      message: `publish: ${missing.map((r) => `${r.type} ${r.name} (${r.purpose})`).join(', ')}; values in status.dnsRecords`,
    };
  }

  #readyCondition(domain: SendingDomainObject, s: { keyProblem?: string; verified: boolean; claimedElsewhere?: SendingDomainObject }): ConditionInput {
    if (s.claimedElsewhere) {
      const other = `${s.claimedElsewhere.metadata.namespace}/${s.claimedElsewhere.metadata.name}`;
      return { type: 'Ready', status: 'False', reason: 'DomainClaimed', message: `${domain.spec.domain} is already claimed by SendingDomain ${other}` };
    }
    if (s.keyProblem) return { type: 'Ready', status: 'False', reason: 'KeyNotReady', message: s.keyProblem };
    if (!s.verified && this.#o.policy.requireDnsVerification) {
      return { type: 'Ready', status: 'False', reason: 'AwaitingVerification', message: `publish the DKIM TXT record in status.dnsRecords; ${domain.spec.domain} can send once it is found` };
    }
    return { type: 'Ready', status: 'True', reason: 'Ready', message: `mail From ${domain.spec.domain} is accepted and DKIM-signed` };
  }

  async #writeStatus(domain: SendingDomainObject, status: SendingDomainStatus, facts: { dkimFound: boolean; allFound: boolean; claimedElsewhere?: SendingDomainObject }): Promise<void> {
    const previous = domain.status;
    if (canonicalJson(previous ?? {}) === canonicalJson(status)) return;
    await this.#o.client.apply(`${paths.sendingDomains(domain.metadata.namespace, domain.metadata.name)}/status`, {
      apiVersion: GROUP_VERSION, kind: 'SendingDomain', metadata: { name: domain.metadata.name, namespace: domain.metadata.namespace }, status,
    }, FIELD_MANAGER);
    const wasVerified = conditionTrue(previous?.conditions, 'DNSVerified');
    if (facts.allFound && !wasVerified) this.#o.events.normal(target(domain), 'DNSVerified', `all DNS records of ${domain.spec.domain} are published`);
    if (!facts.allFound && wasVerified) this.#o.events.warning(target(domain), 'DNSRecordsMissing', `DNS records of ${domain.spec.domain} are missing or changed; see status.dnsRecords`);
    if (!previous?.verifiedAt && status.verifiedAt) this.#o.events.normal(target(domain), 'OwnershipVerified', `DKIM record found: ${domain.spec.domain} is verified`);
    if (facts.claimedElsewhere && !previous?.conditions?.some((c) => c.reason === 'DomainClaimed')) {
      this.#o.events.warning(target(domain), 'DomainClaimed', `${domain.spec.domain} is already claimed by another SendingDomain`);
    }
  }
}
