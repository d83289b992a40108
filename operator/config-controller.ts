// The config: one key for the whole aggregate. Every reconcile rebuilds the document from
// the informer caches (so a deletion needs no special path), and writes two Secret sets —
// the relay's (no private keys) and the deliverer's — only when their content changed.
import type { Logger } from 'pino';
import { delivererView, dispatcherView, newTicketKey, relayView, withTicketKey } from '../shared/config/compiled-config.ts';
import { compileResources } from '../shared/config/compiler.ts';
import { CONFIG_SET_LABEL, MAX_CONFIG_PIECES, decodeConfigSecrets, encodeConfigSecrets, pieceSecretName, readConfigIndex } from '../shared/config/config-secrets.ts';
import { canonicalJson } from '../shared/config/hash.ts';
import { describeProblem, type ConfigProblem } from '../shared/config/problems.ts';
import {
  DEFAULT_DKIM_SELECTOR, DKIM_PRIVATE_KEY, DKIM_SELECTOR_ANNOTATION, PREVIOUS_DKIM_PRIVATE_KEY, PREVIOUS_DKIM_SELECTOR_ANNOTATION,
  apiKeySecret, dkimSecretName, sendingDomainOfSecret,
} from '../shared/config/secret-names.ts';
import type { CompiledConfig } from '../shared/config/types.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { Informer } from '../shared/kube/informer.ts';
import { conditionTrue } from './conditions.ts';
import type { Controller } from './controller.ts';
import type { EventRecorder } from '../shared/kube/events.ts';
import type { OperatorMetrics } from './metrics.ts';
import { FIELD_MANAGER, GROUP_VERSION, MANAGED_BY, SECRET_LABEL, isOwnedBy, paths, type ApiKeyObject, type SecretObject, type SendingDomainObject, type WebhookObject, type AccountSettingsObject, webhookSecretNames } from './resources.ts';
import { domainClaimant } from './sending-domain-controller.ts';

export const CONFIG_KEY = 'config';

/** How long config changes are gathered before the config is compiled and written: twice the last write's cost, within these bounds. */
const MIN_BATCH_MS = 100;
const MAX_BATCH_MS = 2000;

export interface ConfigTargets {
  namespace: string;
  relaySecret: string;
  delivererSecret: string;
  dispatcherSecret: string;
  /** Bytes per piece (tests make it small to exercise sharding). */
  pieceBytes?: number;
  /** How long the relays' shared TLS ticket key is used before a new one replaces it. */
  ticketKeyRotationMs: number;
}

export interface ConfigControllerOptions {
  client: KubeClient;
  domains: Informer<SendingDomainObject>;
  apiKeys: Informer<ApiKeyObject>;
  webhooks?: Informer<WebhookObject>;
  accountSettings?: Informer<AccountSettingsObject>;
  secrets: Informer<SecretObject>;
  targets: ConfigTargets;
  requireDnsVerification: boolean;
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
}

const live = (object: { metadata: { deletionTimestamp?: string } }) => !object.metadata.deletionTimestamp;

const byAge = (a: SendingDomainObject, b: SendingDomainObject) =>
  (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '')
  || `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`);

/**
 * A tracking domain whose CNAME the domain controller looked for and did not find is left out:
 * links through it would lead nowhere, so the message uses the account's or the cluster's.
 */
function withVerifiedTrackingDomain(domain: SendingDomainObject): SendingDomainObject {
  const record = domain.status?.dnsRecords?.find((r) => r.purpose === 'tracking');
  if (!domain.spec.trackingDomain || !record || record.verified) return domain;
  const { trackingDomain: _unverified, ...spec } = domain.spec;
  return { ...domain, spec };
}

export class ConfigController implements Controller {
  readonly kind = 'Config';
  readonly workers = 1;
  readonly resyncAfterList = true;
  readonly #o: ConfigControllerOptions;
  #reported = new Set<string>();
  #lastCostMs = 0;
  #writeFailure: string | undefined;
  /** What this replica last wrote per set, so a cache that lags our own write does not cause a second one. */
  readonly #written = new Map<string, { index: string; resourceVersion?: string; before?: string }>();
  /** The TLS ticket key the relays share; read back from their config when this replica starts leading. */
  #ticket: CompiledConfig['tls'];

  constructor(options: ConfigControllerOptions) {
    this.#o = options;
  }

  /** Every change of a resource, and of a Secret the config is made from, rebuilds the one aggregate. */
  readonly watches = {
    SendingDomain: () => [CONFIG_KEY],
    ApiKey: () => [CONFIG_KEY],
    Webhook: () => [CONFIG_KEY],
    AccountSettings: () => [CONFIG_KEY],
    Secret: (secret: SecretObject) => (this.#madeFrom(secret) ? [CONFIG_KEY] : []),
  };

  keys(): string[] {
    return [CONFIG_KEY];
  }

  /**
   * A burst of kubectl applies compiles once, not once per object (each write is read by every
   * relay and deliverer pod); the window grows with the cost of a write, so a large config under
   * a storm of changes is not rewritten back to back.
   */
  batchDelayMs(): number {
    return Math.min(MAX_BATCH_MS, Math.max(MIN_BATCH_MS, 2 * this.#lastCostMs));
  }

  /** A config Secret of ours, a DKIM key, or the key or credentials of a resource. */
  #madeFrom(secret: SecretObject): boolean {
    const { namespace, name, labels } = secret.metadata;
    return labels?.[CONFIG_SET_LABEL] !== undefined || sendingDomainOfSecret(name) !== undefined
      || (this.#o.webhooks?.list(namespace) ?? []).some((w) => webhookSecretNames(w).includes(name))
      || this.#o.apiKeys.list(namespace).some((k) => apiKeySecret(k).name === name);
  }

  /** A domain joins the config when its key is ready, its ownership proven (unless not required) and its claim first. */
  #eligible(domain: SendingDomainObject, all: readonly SendingDomainObject[]): boolean {
    if (!conditionTrue(domain.status?.conditions, 'KeyReady')) return false;
    if (this.#o.requireDnsVerification && !domain.status?.verifiedAt) return false;
    return domainClaimant(all, domain.spec.domain, this.#o.requireDnsVerification)?.metadata.uid === domain.metadata.uid;
  }

  /** The compiled document from the caches; problems of single resources leave them out. */
  compile(): { config: CompiledConfig; problems: ConfigProblem[] } {
    // An object held by a finalizer is deleted as far as mail is concerned.
    const all = this.#o.domains.list().filter(live);
    const domains = all.filter((d) => this.#eligible(d, all)).sort(byAge).map(withVerifiedTrackingDomain);
    // A generated key whose Secret is not in the cache yet is simply not in force yet.
    // A generated key counts only from its own Secret (owned by this very ApiKey, not a predecessor of the same name).
    const apiKeys = this.#o.apiKeys.list().filter(live).filter((k) => {
      const ref = apiKeySecret(k);
      if (!ref.generated) return true;
      const secret = this.#o.secrets.get(ref.name, k.metadata.namespace);
      return secret !== undefined && isOwnedBy(secret, k);
    });
    const secrets = new Map<string, SecretObject>();
    const want = (namespace: string, name: string) => {
      const secret = this.#o.secrets.get(name, namespace);
      if (secret) secrets.set(`${namespace}/${name}`, secret);
    };
    for (const d of domains) want(d.metadata.namespace, dkimSecretName(d.metadata.name));
    for (const k of apiKeys) want(k.metadata.namespace, apiKeySecret(k).name);
    const webhooks = (this.#o.webhooks?.list() ?? []).filter(live);
    for (const w of webhooks) for (const name of webhookSecretNames(w)) want(w.metadata.namespace, name);
    const accountSettings = (this.#o.accountSettings?.list() ?? []).filter(live);
    return compileResources({ domains, apiKeys, webhooks, accountSettings, secrets, signingKey: (d) => this.#signingKey(d as SendingDomainObject) });
  }

  /**
   * Which selector signs. For the operator's own Secret, the Secret decides, never the spec:
   * during a rotation the previous pair (in DNS) signs until the domain controller has seen
   * the new record and removed it; a spec change not yet acted on keeps the selector the key
   * was made for. A user's own Secret signs with the spec's selector.
   */
  #signingKey(domain: SendingDomainObject): { selector: string; secretKey: string } {
    const secret = this.#o.secrets.get(dkimSecretName(domain.metadata.name), domain.metadata.namespace);
    const specSelector = { selector: domain.spec.dkim?.selector ?? DEFAULT_DKIM_SELECTOR, secretKey: DKIM_PRIVATE_KEY };
    if (!secret || !isOwnedBy(secret, domain)) return specSelector;
    const previousSelector = secret.metadata.annotations?.[PREVIOUS_DKIM_SELECTOR_ANNOTATION];
    if (previousSelector && secret.data?.[PREVIOUS_DKIM_PRIVATE_KEY]) return { selector: previousSelector, secretKey: PREVIOUS_DKIM_PRIVATE_KEY };
    return { selector: secret.metadata.annotations?.[DKIM_SELECTOR_ANNOTATION] ?? specSelector.selector, secretKey: DKIM_PRIVATE_KEY };
  }

  /** Why the config could not be written, while that lasts (the relays keep the last one they read). */
  get writeFailure(): string | undefined {
    return this.#writeFailure;
  }

  async reconcile(): Promise<{ requeueAfterMs: number }> {
    const started = Date.now();
    const { config, problems } = this.compile();
    this.#reportProblems(problems);
    const { relaySecret, delivererSecret, dispatcherSecret } = this.#o.targets;
    const ticket = this.#ticketKey(started);
    try {
      await this.#writeSet('relay', relaySecret, withTicketKey(relayView(config), ticket));
      await this.#writeSet('deliverer', delivererSecret, delivererView(config));
      await this.#writeSet('dispatcher', dispatcherSecret, dispatcherView(config));
      this.#writeFailure = undefined;
    } catch (error) {
      this.#writeFailure = (error as Error).message;
      this.#o.metrics.configWriteFailures.inc();
      throw error; // retried by the work queue with backoff, and logged there
    }
    this.#lastCostMs = Date.now() - started;
    // Come back when the ticket key is due to be replaced.
    return { requeueAfterMs: Math.max(1000, Date.parse(ticket.issuedAt) + this.#o.targets.ticketKeyRotationMs - Date.now()) };
  }

  /**
   * The relays' shared TLS ticket key: the one in the relay config already written (so a new
   * leader does not replace it), or a new one once it is older than the rotation period.
   */
  #ticketKey(now: number): NonNullable<CompiledConfig['tls']> {
    this.#ticket ??= this.#writtenTicketKey();
    if (!this.#ticket || now - Date.parse(this.#ticket.issuedAt) >= this.#o.targets.ticketKeyRotationMs) {
      this.#ticket = { ticketKey: newTicketKey().toString('base64'), issuedAt: new Date(now).toISOString() };
      this.#o.logger.info({ issuedAt: this.#ticket.issuedAt }, 'new TLS ticket key for the relays');
    }
    return this.#ticket;
  }

  #writtenTicketKey(): CompiledConfig['tls'] {
    const { namespace, relaySecret } = this.#o.targets;
    const index = readConfigIndex(this.#o.secrets.get(relaySecret, namespace)?.data);
    if (!index) return undefined;
    try {
      return decodeConfigSecrets(index, (name) => this.#o.secrets.get(name, namespace)?.data).tls;
    } catch {
      return undefined; // pieces out of step: a new key costs resumptions, nothing more
    }
  }

  /** Writes the pieces, then the index, then removes pieces no longer needed — only on change. */
  async #writeSet(view: string, setName: string, document: CompiledConfig): Promise<void> {
    const { client, secrets, targets, metrics, logger } = this.#o;
    const { namespace } = targets;
    const { index, secrets: pieces } = encodeConfigSecrets(setName, document, targets.pieceBytes);
    metrics.configBytes.set({ view }, index.bytes);
    metrics.configShards.set({ view }, pieces.length);
    const cached = secrets.get(setName, namespace);
    const wanted = canonicalJson(index);
    const inCache = cached && canonicalJson(readConfigIndex(cached.data) ?? {}) === wanted && pieces.every((p) => secrets.get(p.name, namespace));
    const last = this.#written.get(setName);
    const cacheLagsOurWrite = cached !== undefined && last?.index === wanted && cached.metadata.resourceVersion === last.before;
    if (inCache || cacheLagsOurWrite) return;
    const write = (name: string, data: Record<string, string>) => client.apply(paths.secrets(namespace, name), {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: { name, namespace, labels: { ...MANAGED_BY, [SECRET_LABEL]: 'config', [CONFIG_SET_LABEL]: setName } }, data,
    }, FIELD_MANAGER);
    for (const piece of pieces.slice(1)) await write(piece.name, piece.data);
    const written = await write(pieces[0]!.name, pieces[0]!.data);
    this.#written.set(setName, { index: wanted, resourceVersion: written.metadata?.resourceVersion, before: cached?.metadata.resourceVersion });
    for (let i = pieces.length; i < MAX_CONFIG_PIECES; i++) {
      if (secrets.get(pieceSecretName(setName, i), namespace)) await client.delete(paths.secrets(namespace, pieceSecretName(setName, i)));
    }
    metrics.configWrites.inc({ view });
    logger.info({ view, secret: `${namespace}/${setName}`, revision: document.revision, pieces: pieces.length, bytes: index.bytes,
      apiKeys: document.apiKeys.length, namespaces: Object.keys(document.namespaces).length }, 'config written');
  }

  /** One Warning Event per new problem, on the resource it is about. */
  #reportProblems(problems: ConfigProblem[]): void {
    const now = new Set(problems.map(describeProblem));
    for (const problem of problems) {
      const text = describeProblem(problem);
      if (this.#reported.has(text)) continue;
      this.#o.logger.warn({ problem: text }, 'resource left out of the config');
      const about = problem.resource;
      if (!about) continue;
      const object = about.kind === 'ApiKey' ? this.#o.apiKeys.get(about.name, about.namespace)
        : about.kind === 'Webhook' ? this.#o.webhooks?.get(about.name, about.namespace)
          : about.kind === 'SendingDomain' ? this.#o.domains.get(about.name, about.namespace) : undefined;
      if (object) this.#o.events.warning({ apiVersion: GROUP_VERSION, kind: about.kind, metadata: object.metadata }, 'LeftOutOfConfig', problem.message);
    }
    this.#reported = now;
  }
}
