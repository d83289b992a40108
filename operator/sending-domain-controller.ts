// SendingDomain: makes sure a DKIM key exists in the domain's own Secret (a new one when the
// selector or key size changes, the old one kept for signing until the new record is in
// DNS), publishes in status the DNS records to create, checks them in DNS on a schedule, and
// reports KeyReady, DNSVerified and Ready. Level-triggered: each reconcile reads the resource
// and its Secret and makes the status right.
import type { Logger } from 'pino';
import { dkimPublicKeyData, generateDkimKey, keyBits, sendingDomainRecords } from '../shared/config/credentials.ts';
import {
  DEFAULT_DKIM_KEY_BITS, DEFAULT_DKIM_SELECTOR, DKIM_PRIVATE_KEY, DKIM_SELECTOR_ANNOTATION, PREVIOUS_DKIM_PRIVATE_KEY,
  PREVIOUS_DKIM_SELECTOR_ANNOTATION, dkimSecretName, sendingDomainOfSecret,
} from '../shared/config/secret-names.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { Informer } from '../shared/kube/informer.ts';
import { conditionTrue, setConditions, type ConditionInput } from './conditions.ts';
import type { Controller } from './controller.ts';
import type { DnsChecker, RecordCheck } from './dns-check.ts';
import type { EventRecorder } from '../shared/kube/events.ts';
import { applyStatus, eventTarget } from './status.ts';
import {
  MANAGED_BY, SECRET_LABEL, isOwnedBy, keyOf, ownerReference, paths, splitKey,
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
  /** The deliverer's bounce domain: status then names each domain's feedback-loop address. */
  bounceDomain?: string;
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

interface DkimKeyState {
  publicKeyData: string;
  bits: number;
  userSupplied: boolean;
  /** A selector still signing until the new record is found. */
  previous?: string;
  problem?: { reason: 'SecretNotLabelled' | 'InvalidKeySecret'; message: string };
}

const readPem = (secret: SecretObject) => (secret.data?.[DKIM_PRIVATE_KEY] ? Buffer.from(secret.data[DKIM_PRIVATE_KEY], 'base64').toString('utf8') : undefined);

/** The public half and size of a PEM RSA private key; undefined for anything else. */
function rsaKey(pem: string): { publicKeyData: string; bits: number } | undefined {
  try {
    const bits = keyBits(pem);
    return bits > 0 ? { publicKeyData: dkimPublicKeyData(pem), bits } : undefined;
  } catch {
    return undefined;
  }
}
const target = (domain: SendingDomainObject) => eventTarget('SendingDomain', domain);

/**
 * Who holds a domain: the oldest SendingDomain for it whose ownership is proven (when
 * verification is required) — an unverified resource cannot squat a domain — then by name.
 */
export function domainClaimant(domains: readonly SendingDomainObject[], domain: string, requireVerification: boolean): SendingDomainObject | undefined {
  return domains.filter((d) => d.spec.domain === domain && !d.metadata.deletionTimestamp && (!requireVerification || d.status?.verifiedAt))
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '')
      || `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))[0];
}

export class SendingDomainController implements Controller {
  readonly kind = 'SendingDomain';
  readonly #o: SendingDomainControllerOptions;
  /** When each domain's records were last looked up, and what was found (not written to status every time). */
  readonly #lastCheck = new Map<string, { at: number; records: string; results: RecordCheck[] }>();

  constructor(options: SendingDomainControllerOptions) {
    this.#o = options;
  }

  readonly watches = {
    // Every resource naming the same domain is reconciled again: a claim may have moved.
    SendingDomain: (changed: SendingDomainObject) => [keyOf(changed), ...this.#o.domains.list().filter((d) => d.spec.domain === changed.spec.domain).map(keyOf)],
    // Its own `-dkim` Secret, by owner or (a user-supplied key) by name.
    Secret: (secret: SecretObject) => {
      const { namespace, name } = secret.metadata;
      const owners = (secret.metadata.ownerReferences ?? []).filter((o) => o.kind === 'SendingDomain').map((o) => `${namespace}/${o.name}`);
      const byName = sendingDomainOfSecret(name);
      return byName && this.#o.domains.get(byName, namespace) ? [...owners, `${namespace}/${byName}`] : owners;
    },
  };

  keys(): string[] {
    return this.#o.domains.list().map(keyOf);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const domain = this.#o.domains.get(name, namespace);
    if (!domain || domain.metadata.deletionTimestamp) {
      this.#lastCheck.delete(key); // the owned Secret goes with it (ownerReference)
      return;
    }
    const selector = domain.spec.dkim?.selector ?? DEFAULT_DKIM_SELECTOR;
    const keySize = domain.spec.dkim?.keySize ?? DEFAULT_DKIM_KEY_BITS;
    const dkim = await this.#ensureKey(domain, selector, keySize);
    // Without a key there is nothing to publish yet; never ask for (or accept) an empty p=.
    const records = dkim.problem ? [] : this.#desiredRecords(domain, selector, dkim.publicKeyData);
    const { results, nextCheckMs } = dkim.problem ? { results: [], nextCheckMs: this.#o.policy.unverifiedCheckMs }
      : await this.#checkDns(key, records, conditionTrue(domain.status?.conditions, 'DNSVerified'));
    const dnsRecords: DnsRecord[] = records.map((r, i) => ({ ...r, verified: results[i] === 'found' }));
    const dkimFound = results[0] === 'found';
    const allFound = records.length > 0 && results.every((r) => r === 'found');
    if (dkimFound && dkim.previous) await this.#retirePreviousKey(domain, dkim.previous);
    const verifiedAt = domain.status?.verifiedAt ?? (dkimFound ? new Date().toISOString() : undefined);
    const claimant = domainClaimant(this.#o.domains.list(), domain.spec.domain, this.#o.policy.requireDnsVerification);
    const claimedElsewhere = claimant && claimant.metadata.uid !== domain.metadata.uid ? claimant : undefined;
    if (claimedElsewhere) {
      this.#o.logger.info({ domain: domain.spec.domain, resource: key, claimedBy: `${claimedElsewhere.metadata.namespace}/${claimedElsewhere.metadata.name}` }, 'domain already claimed');
    }

    const dmarc: ConditionInput = dkim.problem
      ? { type: 'DMARCAligned', status: 'Unknown', reason: 'KeyNotReady', message: 'no DKIM key yet, so mail cannot pass DMARC' }
      : dmarcCondition(domain.spec.domain, dnsRecords, results);
    const conditions: ConditionInput[] = [
      dkim.problem
        ? { type: 'KeyReady', status: 'False', reason: dkim.problem.reason, message: dkim.problem.message }
        : { type: 'KeyReady', status: 'True', reason: dkim.userSupplied ? 'UserSuppliedKey' : 'KeyGenerated',
          message: `${dkim.bits}-bit RSA key in Secret ${dkimSecretName(domain.metadata.name)}, selector ${selector}${dkim.previous ? `; signing with selector ${dkim.previous} until this record is found` : ''}` },
      dkim.problem ? { type: 'DNSVerified', status: 'Unknown', reason: 'KeyNotReady', message: 'no DKIM key yet, so no records to publish' } : this.#dnsCondition(dnsRecords, results),
      dmarc,
      this.#readyCondition(domain, { keyProblem: dkim.problem?.message, verified: Boolean(verifiedAt), claimedElsewhere }),
    ];
    const status: SendingDomainStatus = {
      observedGeneration: domain.metadata.generation,
      dkim: { selector, keySize: dkim.bits, secretName: dkimSecretName(domain.metadata.name), ...(dkim.previous && !dkimFound ? { signingSelector: dkim.previous } : {}) },
      dnsRecords,
      // What to register with the mailbox providers' feedback loops (the inbound role takes it).
      ...(this.#o.policy.bounceDomain ? { feedbackLoopAddress: `fbl+${domain.spec.domain}@${this.#o.policy.bounceDomain}` } : {}),
      ...(verifiedAt ? { verifiedAt } : {}),
      conditions: setConditions(domain.status?.conditions, conditions, domain.metadata.generation),
    };
    await this.#writeStatus(domain, status, { dkimFound, allFound, claimedElsewhere, dmarc });
    return { requeueAfterMs: nextCheckMs };
  }

  /**
   * The domain's DKIM key: a user-supplied Secret `<name>-dkim` (labelled for mtrelay) is used
   * as it is; otherwise the operator's own Secret is created, or rotated when the selector or
   * size changed — keeping the old key and selector for signing until the new record is found.
   */
  async #ensureKey(domain: SendingDomainObject, selector: string, keySize: number): Promise<DkimKeyState> {
    const { namespace } = domain.metadata;
    const secretName = dkimSecretName(domain.metadata.name);
    const secret = this.#o.secrets.get(secretName, namespace) ?? await this.#o.client.get<SecretObject>(paths.secrets(namespace, secretName));
    const none = { publicKeyData: '', bits: 0, userSupplied: false };
    if (secret && !isOwnedBy(secret, domain)) {
      if (secret.metadata.labels?.[SECRET_LABEL] === undefined) {
        return { ...none, userSupplied: true, problem: { reason: 'SecretNotLabelled', message: `Secret ${secretName} exists but is not labelled ${SECRET_LABEL}; label it to use it as the DKIM key (kubectl label secret -n ${namespace} ${secretName} ${SECRET_LABEL}=dkim), or delete it to have one generated` } };
      }
      const pem = readPem(secret);
      const rsa = pem ? rsaKey(pem) : undefined;
      if (!rsa) return { ...none, userSupplied: true, problem: { reason: 'InvalidKeySecret', message: `Secret ${secretName} has no PEM RSA private key "${DKIM_PRIVATE_KEY}"` } };
      return { ...rsa, userSupplied: true };
    }
    // The operator's own Secret: a signing pair (selector, key) that is in DNS, and during a
    // rotation a current pair waiting for its record. The previous pair only ever holds a
    // key that was signing, so a second change mid-rotation never loses the published key.
    if (secret && secret.metadata.labels?.[SECRET_LABEL] === undefined) {
      await this.#o.client.mergePatch(paths.secrets(namespace, secretName), { metadata: { labels: { [SECRET_LABEL]: 'dkim' } } });
    }
    const pem = secret ? readPem(secret) : undefined;
    const current = pem ? rsaKey(pem) : undefined;
    const currentSelector = secret?.metadata.annotations?.[DKIM_SELECTOR_ANNOTATION];
    const previousPem = secret?.data?.[PREVIOUS_DKIM_PRIVATE_KEY] ? Buffer.from(secret.data[PREVIOUS_DKIM_PRIVATE_KEY], 'base64').toString('utf8') : undefined;
    const previousSelector = previousPem ? secret?.metadata.annotations?.[PREVIOUS_DKIM_SELECTOR_ANNOTATION] : undefined;
    if (current && currentSelector === selector && current.bits === keySize) {
      return { ...current, userSupplied: false, ...(previousSelector ? { previous: previousSelector } : {}) };
    }
    const previousKey = previousPem ? rsaKey(previousPem) : undefined;
    if (previousSelector && previousKey && previousSelector === selector && previousKey.bits === keySize) {
      // Changed back to the selector still signing: it becomes current again, nothing to publish.
      await this.#writeKeySecret(domain, secret!, { selector, pem: previousPem! });
      this.#o.events.normal(target(domain), 'RotationCancelled', `selector ${selector} is current again; its published key stays`);
      return { ...previousKey, userSupplied: false };
    }

    const { privateKey } = await generateDkimKey(keySize);
    // What keeps signing meanwhile: the pair already waiting to be retired, else the current one
    // when its selector changes (one selector has one record, so a size change alone cannot overlap).
    const keepPrevious = previousSelector && previousPem ? { selector: previousSelector, pem: previousPem }
      : current && currentSelector && currentSelector !== selector ? { selector: currentSelector, pem: pem! } : undefined;
    await this.#writeKeySecret(domain, secret, { selector, pem: privateKey }, keepPrevious);
    const rotated = Boolean(secret);
    this.#o.events.normal(target(domain), rotated ? 'KeyRotated' : 'KeyGenerated',
      `${rotated ? 'new' : 'generated a'} ${keySize}-bit DKIM key for selector ${selector} in Secret ${secretName}; publish the DKIM record from status.dnsRecords`
      + (keepPrevious ? `; mail stays signed with selector ${keepPrevious.selector} until it is found` : ''));
    this.#o.logger.info({ domain: domain.spec.domain, resource: `${namespace}/${domain.metadata.name}`, selector, rotated }, 'DKIM key written');
    return { publicKeyData: dkimPublicKeyData(privateKey), bits: keySize, userSupplied: false, ...(keepPrevious ? { previous: keepPrevious.selector } : {}) };
  }

  /**
   * Writes the key Secret: created when missing (fails if it appeared meanwhile), otherwise
   * replaced with the resourceVersion read (fails if it changed since); either way the
   * reconcile is retried with fresh data, and no key is ever overwritten blindly.
   */
  async #writeKeySecret(domain: SendingDomainObject, secret: SecretObject | undefined, current: { selector: string; pem: string }, previous?: { selector: string; pem: string }): Promise<void> {
    const { namespace } = domain.metadata;
    const secretName = dkimSecretName(domain.metadata.name);
    const body = {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: {
        name: secretName, namespace,
        labels: { ...MANAGED_BY, [SECRET_LABEL]: 'dkim', 'mtrelay.dev/sending-domain': domain.metadata.name },
        annotations: { [DKIM_SELECTOR_ANNOTATION]: current.selector, ...(previous ? { [PREVIOUS_DKIM_SELECTOR_ANNOTATION]: previous.selector } : {}) },
        ownerReferences: [ownerReference({ kind: 'SendingDomain', metadata: domain.metadata })],
        ...(secret ? { resourceVersion: secret.metadata.resourceVersion } : {}),
      },
      data: {
        [DKIM_PRIVATE_KEY]: Buffer.from(current.pem).toString('base64'),
        ...(previous ? { [PREVIOUS_DKIM_PRIVATE_KEY]: Buffer.from(previous.pem).toString('base64') } : {}),
      },
    };
    if (secret) await this.#o.client.replace(paths.secrets(namespace, secretName), body);
    else await this.#o.client.create(paths.secrets(namespace), body);
  }

  /** The new selector's record is in DNS: sign with it, and forget the old key. */
  async #retirePreviousKey(domain: SendingDomainObject, previousSelector: string): Promise<void> {
    const { namespace } = domain.metadata;
    const secretName = dkimSecretName(domain.metadata.name);
    const secret = this.#o.secrets.get(secretName, namespace);
    if (!secret?.data?.[PREVIOUS_DKIM_PRIVATE_KEY]) return;
    const { [PREVIOUS_DKIM_PRIVATE_KEY]: _old, ...data } = secret.data;
    const { [PREVIOUS_DKIM_SELECTOR_ANNOTATION]: _selector, ...annotations } = secret.metadata.annotations ?? {};
    await this.#o.client.replace(paths.secrets(namespace, secretName), { ...secret, metadata: { ...secret.metadata, annotations }, data });
    this.#o.events.normal(target(domain), 'PreviousKeyRetired', `the new DKIM record is published: mail is signed with the new selector, the key of selector ${previousSelector} is deleted`);
  }

  #desiredRecords(domain: SendingDomainObject, selector: string, publicKeyData: string): Omit<DnsRecord, 'verified'>[] {
    const { spfInclude, trackingCname } = this.#o.policy;
    return sendingDomainRecords({
      domain: domain.spec.domain, selector, publicKeyData,
      ...(spfInclude ? { spfMechanism: `include:${spfInclude}` } : {}),
      ...(domain.spec.trackingDomain ? { trackingDomain: domain.spec.trackingDomain } : {}),
      ...(trackingCname ? { trackingCname } : {}),
    });
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
      // Another account's resource is not named here: that would tell one tenant about another.
      const other = s.claimedElsewhere.metadata.namespace === domain.metadata.namespace ? `SendingDomain ${s.claimedElsewhere.metadata.name}` : 'another account';
      return { type: 'Ready', status: 'False', reason: 'DomainClaimed', message: `${domain.spec.domain} is already in use by ${other}` };
    }
    if (s.keyProblem) return { type: 'Ready', status: 'False', reason: 'KeyNotReady', message: s.keyProblem };
    if (!s.verified && this.#o.policy.requireDnsVerification) {
      return { type: 'Ready', status: 'False', reason: 'AwaitingVerification', message: `publish the DKIM TXT record in status.dnsRecords; ${domain.spec.domain} can send once it is found` };
    }
    return { type: 'Ready', status: 'True', reason: 'Ready', message: `mail From ${domain.spec.domain} is accepted and DKIM-signed` };
  }

  async #writeStatus(domain: SendingDomainObject, status: SendingDomainStatus,
    facts: { dkimFound: boolean; allFound: boolean; claimedElsewhere?: SendingDomainObject | undefined; dmarc: ConditionInput }): Promise<void> {
    const previous = domain.status;
    if (!await applyStatus(this.#o.client, 'SendingDomain', domain, status)) return;
    const wasFailingDmarc = previous?.conditions?.some((c) => c.type === 'DMARCAligned' && c.status === 'False' && c.reason === facts.dmarc.reason);
    if (facts.dmarc.status === 'False' && !wasFailingDmarc) this.#o.events.warning(target(domain), facts.dmarc.reason, facts.dmarc.message);
    const wasVerified = conditionTrue(previous?.conditions, 'DNSVerified');
    if (facts.allFound && !wasVerified) this.#o.events.normal(target(domain), 'DNSVerified', `all DNS records of ${domain.spec.domain} are published`);
    if (!facts.allFound && wasVerified) this.#o.events.warning(target(domain), 'DNSRecordsMissing', `DNS records of ${domain.spec.domain} are missing or changed; see status.dnsRecords`);
    if (!previous?.verifiedAt && status.verifiedAt) this.#o.events.normal(target(domain), 'OwnershipVerified', `DKIM record found: ${domain.spec.domain} is verified`);
    if (facts.claimedElsewhere && !previous?.conditions?.some((c) => c.reason === 'DomainClaimed')) {
      this.#o.events.warning(target(domain), 'DomainClaimed', `${domain.spec.domain} is already claimed by another SendingDomain`);
    }
  }
}

/**
 * Whether mail From the domain passes DMARC at the mailbox providers: by its DKIM signature
 * (d= is the domain itself, so it aligns, relaxed or strict), which needs the DKIM record; SPF
 * cannot be counted on (the return path is the bounce domain's or the sender's own). Gmail and
 * Yahoo also want a DMARC record of every bulk sender.
 */
export function dmarcCondition(domain: string, records: DnsRecord[], results: RecordCheck[]): ConditionInput {
  const at = (purpose: DnsRecord['purpose']) => records.findIndex((r) => r.purpose === purpose);
  const dkim = results[at('dkim')];
  const dmarc = results[at('dmarc')];
  if (dkim === 'lookup_failed' || dmarc === 'lookup_failed') {
    return { type: 'DMARCAligned', status: 'Unknown', reason: 'LookupFailed', message: 'DNS lookups failed (SERVFAIL or timeout); checking again later' };
  }
  if (dkim !== 'found') {
    return { type: 'DMARCAligned', status: 'False', reason: 'DKIMRecordMissing',
      message: `mail From ${domain} fails DMARC: its DKIM record ${records[at('dkim')]?.name ?? ''} is not in DNS (or not this key), and SPF does not align with the return path; publish it from status.dnsRecords` };
  }
  if (dmarc !== 'found') {
    return { type: 'DMARCAligned', status: 'False', reason: 'DMARCRecordMissing',
      message: `${domain} has no DMARC record, which Gmail and Yahoo require of bulk senders: publish TXT _dmarc.${domain} "v=DMARC1; p=none" (or a policy of yours)` };
  }
  return { type: 'DMARCAligned', status: 'True', reason: 'Aligned', message: `mail From ${domain} passes DMARC by its DKIM signature (d=${domain}), and the domain publishes a DMARC record` };
}
