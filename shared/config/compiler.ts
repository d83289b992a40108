// Turns account resources (SendingDomain, ApiKey, Webhook and the Secrets holding keys,
// exactly as one would `kubectl apply` them) into the compiled config document. Standalone
// mode and the --resources folder use it directly; the operator feeds it from informers.
// Only they load it: pods that read the operator's Secrets never do.
import type { ValidateFunction } from 'ajv';
import { ajv, describeFirstError } from '../validation.ts';
import objectMetaSchema from './schemas/object-meta.schema.json' with { type: 'json' };
import sendingDomainSchema from './schemas/sending-domain.schema.json' with { type: 'json' };
import apiKeySchema from './schemas/api-key.schema.json' with { type: 'json' };
import secretSchema from './schemas/secret.schema.json' with { type: 'json' };
import accountSettingsSchema from './schemas/account-settings.schema.json' with { type: 'json' };
import webhookSchema from './schemas/webhook.schema.json' with { type: 'json' };
import { validateCompiledConfig } from './compiled-config.ts';
import { MIN_API_KEY_LENGTH } from './credentials.ts';
import { apiKeyPrefix, canonicalJson, sha256Hex } from './hash.ts';
import { ConfigCompileError, type ConfigProblem, type ResourceKind } from './problems.ts';
import { DEFAULT_DKIM_SELECTOR, DKIM_PRIVATE_KEY, apiKeySecret, dkimSecretName } from './secret-names.ts';
import {
  API_GROUP_VERSION, CONFIG_API_VERSION,
  type AccountSettings, type ApiKey, type CompiledApiKey, type CompiledConfig, type CompiledNamespace, type CompiledWebhook, type Resource,
  type Secret, type SendingDomain, type Webhook,
} from './types.ts';

ajv.addSchema(objectMetaSchema);
const validators: Record<string, ValidateFunction> = {
  [`${API_GROUP_VERSION}/SendingDomain`]: ajv.compile(sendingDomainSchema),
  [`${API_GROUP_VERSION}/ApiKey`]: ajv.compile(apiKeySchema),
  'v1/Secret': ajv.compile(secretSchema),
  [`${API_GROUP_VERSION}/AccountSettings`]: ajv.compile(accountSettingsSchema),
  [`${API_GROUP_VERSION}/Webhook`]: ajv.compile(webhookSchema),
};

const DEFAULT_NAMESPACE = 'default';

/** One parsed document and where it came from, for error messages. */
export interface SourcedDocument {
  source: string;
  document: unknown;
}

function kindOf(document: unknown): string | undefined {
  if (!document || typeof document !== 'object') return undefined;
  const { apiVersion, kind } = document as { apiVersion?: unknown; kind?: unknown };
  return typeof apiVersion === 'string' && typeof kind === 'string' ? `${apiVersion}/${kind}` : undefined;
}

const namespaceOf = (resource: { metadata: { namespace?: string } }) => resource.metadata.namespace ?? DEFAULT_NAMESPACE;

/** A problem about one resource. */
function about(resource: Resource | Webhook, message: string): ConfigProblem {
  return { resource: { kind: resource.kind, namespace: namespaceOf(resource), name: resource.metadata.name }, message };
}

function secretValue(secret: Secret, key: string): string | undefined {
  const plain = secret.stringData?.[key];
  if (plain !== undefined) return plain.trim();
  const encoded = secret.data?.[key];
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8').trim();
}

/** Validates every document against its schema and sorts the known kinds; others are ignored. */
function validateAll(documents: SourcedDocument[], problems: ConfigProblem[]): (Resource | Webhook)[] {
  const resources: (Resource | Webhook)[] = [];
  for (const { source, document } of documents) {
    if (document === null || document === undefined) continue; // an empty YAML document
    const kind = kindOf(document);
    if (!kind) {
      problems.push({ source, message: 'not a Kubernetes resource (apiVersion and kind are required)' });
      continue;
    }
    const validate = validators[kind];
    if (!validate) continue; // other kinds (Deployments, ConfigMaps, …) may share the folder
    if (!validate(document)) {
      const { metadata } = document as { metadata?: { name?: unknown; namespace?: unknown } };
      problems.push({
        source,
        resource: { kind: kind.split('/').pop()!, namespace: String(metadata?.namespace ?? DEFAULT_NAMESPACE), name: String(metadata?.name ?? '(unnamed)') },
        message: describeFirstError(validate.errors),
      });
      continue;
    }
    resources.push(document as Resource | Webhook);
  }
  return resources;
}

/** By `namespace/name`. A name defined twice is left out altogether: which copy is meant cannot be known (a stale copy could undo a revocation). */
function indexUnique<T extends Resource | Webhook>(items: T[], problems: ConfigProblem[]): Map<string, T> {
  const byName = new Map<string, T>();
  const twice = new Set<string>();
  for (const item of items) {
    const key = `${namespaceOf(item)}/${item.metadata.name}`;
    if (byName.has(key) || twice.has(key)) {
      if (!twice.has(key)) problems.push(about(item, 'is defined twice; every definition is left out until one remains'));
      twice.add(key);
      byName.delete(key);
      continue;
    }
    byName.set(key, item);
  }
  return byName;
}

/** What the compiled document's schema accepts as a DKIM key; checked per domain so one bad key leaves only its domain out. */
const PEM_PRIVATE_KEY = /^-----BEGIN (RSA )?PRIVATE KEY-----/;

/** Which selector signs, and which key of the `<name>-dkim` Secret holds its private key. */
export type SigningKey = (domain: SendingDomain) => { selector: string; secretKey: string };
const specSigningKey: SigningKey = (domain) => ({ selector: domain.spec.dkim?.selector ?? DEFAULT_DKIM_SELECTOR, secretKey: DKIM_PRIVATE_KEY });

function compileDomains(domains: SendingDomain[], secrets: Map<string, Secret>, problems: ConfigProblem[], signingKey: SigningKey = specSigningKey): Record<string, CompiledNamespace> {
  const namespaces: Record<string, CompiledNamespace> = {};
  const owner = new Map<string, SendingDomain>();
  for (const resource of domains) {
    const namespace = namespaceOf(resource);
    const domain = resource.spec.domain;
    const claimedBy = owner.get(domain);
    if (claimedBy) {
      problems.push(about(resource, `domain ${domain} is already claimed by SendingDomain ${namespaceOf(claimedBy)}/${claimedBy.metadata.name}`));
      continue;
    }
    owner.set(domain, resource);
    const signing = signingKey(resource);
    const secretName = dkimSecretName(resource.metadata.name);
    const dkimSecret = secrets.get(`${namespace}/${secretName}`);
    const dkimPrivateKey = dkimSecret ? secretValue(dkimSecret, signing.secretKey) : undefined;
    const usable = dkimPrivateKey !== undefined && PEM_PRIVATE_KEY.test(dkimPrivateKey);
    // A damaged key leaves the domain in, without a key: its mail gets a temporary 451 naming it, not a permanent "unconfigured".
    if (dkimSecret && !usable) problems.push(about(resource, `Secret ${namespace}/${secretName} has no PEM private key "${signing.secretKey}"`));
    const entry = (namespaces[namespace] ??= { domains: {} });
    entry.domains[domain] = {
      domain,
      resource: resource.metadata.name,
      dkimSelector: signing.selector,
      ...(usable ? { dkimPrivateKey: `${dkimPrivateKey}\n` } : { noDkimKey: true as const }),
      ...(resource.spec.trackingDomain ? { trackingDomain: resource.spec.trackingDomain } : {}),
    };
  }
  return namespaces;
}

function compileApiKeys(keys: ApiKey[], secrets: Map<string, Secret>, problems: ConfigProblem[]): CompiledApiKey[] {
  const compiled: CompiledApiKey[] = [];
  const seenHashes = new Map<string, string>();
  // A fixed order, so which of two keys sharing a value is refused does not depend on list order.
  const ordered = [...keys].sort((a, b) => `${namespaceOf(a)}/${a.metadata.name}`.localeCompare(`${namespaceOf(b)}/${b.metadata.name}`));
  for (const resource of ordered) {
    const namespace = namespaceOf(resource);
    const id = `${namespace}/${resource.metadata.name}`;
    const ref = apiKeySecret(resource);
    const secret = secrets.get(`${namespace}/${ref.name}`);
    if (!secret) {
      const hint = ref.generated ? ` (an ApiKey without spec.secretRef reads Secret ${ref.name}, key ${ref.key})` : '';
      problems.push(about(resource, `Secret ${namespace}/${ref.name} not found${hint}`));
      continue;
    }
    const key = secretValue(secret, ref.key);
    if (!key) {
      problems.push(about(resource, `Secret ${namespace}/${ref.name} has no key "${ref.key}"`));
      continue;
    }
    if (key.length < MIN_API_KEY_LENGTH) {
      problems.push(about(resource, `the API key in Secret ${namespace}/${ref.name} is shorter than ${MIN_API_KEY_LENGTH} characters`));
      continue;
    }
    const sha256 = sha256Hex(key);
    const sharedWith = seenHashes.get(sha256);
    if (sharedWith) {
      // Never name a resource of another namespace (account): that would tell one tenant about another.
      const named = sharedWith.startsWith(`${namespace}/`) ? `ApiKey ${sharedWith}` : 'another ApiKey';
      problems.push(about(resource, `uses the same key as ${named}; every ApiKey needs its own`));
      continue;
    }
    seenHashes.set(sha256, id);
    compiled.push({
      id,
      namespace,
      sha256,
      prefix: apiKeyPrefix(key),
      permissions: [...resource.spec.permissions].sort(),
      disabled: resource.spec.disabled ?? false,
      ...(resource.spec.expiresAt ? { expiresAt: resource.spec.expiresAt } : {}),
      ...(resource.spec.limits && Object.keys(resource.spec.limits).length ? { limits: resource.spec.limits } : {}),
    });
  }
  return compiled.sort((a, b) => a.id.localeCompare(b.id));
}

/** Which Secret keys hold a webhook's credentials, by auth type. */
const WEBHOOK_SECRET_KEYS = { none: [], basic: ['username', 'password'], bearer: ['token'], oauth2: ['clientId', 'clientSecret'] } as const;

function compileWebhooks(webhooks: Webhook[], secrets: Map<string, Secret>, problems: ConfigProblem[]): { namespace: string; compiled: CompiledWebhook }[] {
  const compiled: { namespace: string; compiled: CompiledWebhook }[] = [];
  for (const resource of [...webhooks].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const namespace = namespaceOf(resource);
    const type = resource.spec.auth?.type ?? 'none';
    const values: Record<string, string> = {};
    const ref = resource.spec.auth?.secretRef;
    if (type !== 'none') {
      const secret = ref ? secrets.get(`${namespace}/${ref.name}`) : undefined;
      if (!secret) {
        problems.push(about(resource, `Secret ${namespace}/${ref?.name ?? '(none)'} not found`));
        continue;
      }
      const missing = WEBHOOK_SECRET_KEYS[type].filter((key) => !(values[key] = secretValue(secret, key) ?? ''));
      if (missing.length) {
        problems.push(about(resource, `Secret ${namespace}/${ref!.name} has no ${missing.map((k) => `"${k}"`).join(', ')} (needed for ${type})`));
        continue;
      }
    }
    let signingSecret: string | undefined;
    const signing = resource.spec.signing?.secretRef.name;
    if (signing) {
      const secret = secrets.get(`${namespace}/${signing}`);
      signingSecret = secret && secretValue(secret, 'secret');
      if (!signingSecret) {
        problems.push(about(resource, secret ? `Secret ${namespace}/${signing} has no "secret" (the signing key)` : `Secret ${namespace}/${signing} not found`));
        continue;
      }
    }
    const oauth2 = type === 'oauth2' ? { tokenUrl: resource.spec.auth!.tokenUrl!, ...(resource.spec.auth!.scope ? { scope: resource.spec.auth!.scope } : {}) } : {};
    compiled.push({ namespace, compiled: {
      name: resource.metadata.name, url: resource.spec.url, events: [...(resource.spec.events ?? [])].sort(),
      auth: { type, ...values, ...oauth2 } as CompiledWebhook['auth'],
      ...(signingSecret ? { signingSecret } : {}),
    } });
  }
  return compiled;
}

/** Each namespace's defaults; a namespace without AccountSettings tracks nothing unless X-MT-ATTR asks. */
function compileSettings(settings: AccountSettings[], namespaces: Record<string, CompiledNamespace>): void {
  for (const resource of settings) {
    const tracking = resource.spec.tracking ?? {};
    (namespaces[namespaceOf(resource)] ??= { domains: {} }).settings = {
      openTracking: tracking.opens ?? false,
      clickTracking: tracking.clicks ?? false,
      ...(tracking.domain ? { trackingDomain: tracking.domain } : {}),
      ...(resource.spec.listUnsubscribe === false ? { listUnsubscribe: false as const } : {}),
    };
  }
}

const byKind = <K extends ResourceKind>(resources: (Resource | Webhook)[], kind: K) => resources.filter((r): r is Extract<Resource | Webhook, { kind: K }> => r.kind === kind);

/** Compiles the documents, or throws ConfigCompileError listing every problem found. */
export function compileConfig(documents: SourcedDocument[]): CompiledConfig {
  const { config, problems } = compileDocuments(documents);
  if (problems.length) throw new ConfigCompileError(problems);
  return config;
}

/**
 * Compiles the documents leniently, as the operator compiles resources: a document that is not
 * valid, or a resource with a problem, is left out and its problem reported; the rest compile.
 * An ApiKey whose Secret is missing or invalid is left out, so it fails closed.
 */
export function compileDocuments(documents: SourcedDocument[]): { config: CompiledConfig; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const resources = validateAll(documents, problems);
  const domains = indexUnique(byKind(resources, 'SendingDomain'), problems);
  const keys = indexUnique(byKind(resources, 'ApiKey'), problems);
  const secrets = indexUnique(byKind(resources, 'Secret'), problems);
  const accountSettings = indexUnique(byKind(resources, 'AccountSettings'), problems);
  const webhooks = indexUnique(byKind(resources, 'Webhook'), problems);
  const { config, problems: more } = compileResources({
    domains: [...domains.values()], apiKeys: [...keys.values()], secrets, accountSettings: [...accountSettings.values()], webhooks: [...webhooks.values()],
  });
  return { config, problems: [...problems, ...more] };
}

export interface CompileInput {
  /** In order of precedence: when two claim one domain, the first keeps it. */
  domains: SendingDomain[];
  apiKeys: ApiKey[];
  webhooks?: Webhook[];
  /** At most one per namespace (named `default`, which the CRD and schema enforce). */
  accountSettings?: AccountSettings[];
  /** Defaults to the selector in the spec and the Secret's `privateKey`. */
  signingKey?: SigningKey;
  /** Keyed `namespace/name`. */
  secrets: Map<string, Secret>;
}

/**
 * Compiles resources that are already valid (the API server checked them against the CRDs);
 * a resource with a problem is left out and its problem reported, the rest compile.
 */
export function compileResources(input: CompileInput): { config: CompiledConfig; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const namespaces = compileDomains(input.domains, input.secrets, problems, input.signingKey);
  const apiKeys = compileApiKeys(input.apiKeys, input.secrets, problems);
  compileSettings(input.accountSettings ?? [], namespaces);
  for (const webhook of compileWebhooks(input.webhooks ?? [], input.secrets, problems)) {
    ((namespaces[webhook.namespace] ??= { domains: {} }).webhooks ??= []).push(webhook.compiled);
  }
  const body = { namespaces, apiKeys };
  const config: CompiledConfig = {
    apiVersion: CONFIG_API_VERSION,
    revision: sha256Hex(canonicalJson(body)),
    ...body,
  };
  if (!validateCompiledConfig(config)) {
    throw new ConfigCompileError([{ message: `compiled config ${describeFirstError(validateCompiledConfig.errors)}` }]);
  }
  return { config, problems };
}
