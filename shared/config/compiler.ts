// Turns account resources (SendingDomain, ApiKey and the Secrets holding keys, exactly as
// one would `kubectl apply` them) into the compiled config document. Standalone mode and
// the relay's --resources folder use it directly; the operator feeds it from informers.
import { createHash } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import { ajv, describeFirstError } from '../validation.ts';
import objectMetaSchema from './schemas/object-meta.schema.json' with { type: 'json' };
import sendingDomainSchema from './schemas/sending-domain.schema.json' with { type: 'json' };
import apiKeySchema from './schemas/api-key.schema.json' with { type: 'json' };
import secretSchema from './schemas/secret.schema.json' with { type: 'json' };
import compiledConfigSchema from './schemas/compiled-config.schema.json' with { type: 'json' };
import {
  API_GROUP_VERSION, CONFIG_API_VERSION,
  type ApiKey, type CompiledApiKey, type CompiledConfig, type CompiledNamespace, type CompiledWebhook, type Resource,
  type Secret, type SendingDomain, type Webhook,
} from './types.ts';

ajv.addSchema(objectMetaSchema);
const validators: Record<string, ValidateFunction> = {
  [`${API_GROUP_VERSION}/SendingDomain`]: ajv.compile(sendingDomainSchema),
  [`${API_GROUP_VERSION}/ApiKey`]: ajv.compile(apiKeySchema),
  'v1/Secret': ajv.compile(secretSchema),
};
export const validateCompiledConfig = ajv.compile<CompiledConfig>(compiledConfigSchema);

/** API keys shorter than this are refused: they could be guessed. */
export const MIN_API_KEY_LENGTH = 20;
const DEFAULT_NAMESPACE = 'default';

/** One parsed document and where it came from, for error messages. */
export interface SourcedDocument {
  source: string;
  document: unknown;
}

export class ConfigCompileError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigCompileError';
    this.problems = problems;
  }
}

export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

export function apiKeyPrefix(key: string): string {
  return key.slice(0, 6);
}

function kindOf(document: unknown): string | undefined {
  if (!document || typeof document !== 'object') return undefined;
  const { apiVersion, kind } = document as { apiVersion?: unknown; kind?: unknown };
  return typeof apiVersion === 'string' && typeof kind === 'string' ? `${apiVersion}/${kind}` : undefined;
}

function label(resource: Resource): string {
  return `${resource.kind} ${resource.metadata.namespace ?? DEFAULT_NAMESPACE}/${resource.metadata.name}`;
}

function secretValue(secret: Secret, key: string): string | undefined {
  const plain = secret.stringData?.[key];
  if (plain !== undefined) return plain.trim();
  const encoded = secret.data?.[key];
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8').trim();
}

/** Validates every document against its schema and sorts the known kinds; others are ignored. */
function validateAll(documents: SourcedDocument[], problems: string[]): Resource[] {
  const resources: Resource[] = [];
  for (const { source, document } of documents) {
    if (document === null || document === undefined) continue; // an empty YAML document
    const kind = kindOf(document);
    if (!kind) {
      problems.push(`${source}: not a Kubernetes resource (apiVersion and kind are required)`);
      continue;
    }
    const validate = validators[kind];
    if (!validate) continue; // other kinds (Deployments, ConfigMaps, …) may share the folder
    if (!validate(document)) {
      const name = (document as { metadata?: { name?: unknown } }).metadata?.name;
      problems.push(`${source}: ${kind.split('/').pop()} ${String(name ?? '(unnamed)')}: ${describeFirstError(validate.errors)}`);
      continue;
    }
    resources.push(document as Resource);
  }
  return resources;
}

function indexUnique<T extends Resource>(items: T[], problems: string[]): Map<string, T> {
  const byName = new Map<string, T>();
  for (const item of items) {
    const key = `${item.metadata.namespace ?? DEFAULT_NAMESPACE}/${item.metadata.name}`;
    if (byName.has(key)) problems.push(`${label(item)} is defined twice`);
    byName.set(key, item);
  }
  return byName;
}

/** The Secret holding a domain's DKIM key: the one the operator creates, `<name>-dkim`. */
export function dkimSecretName(domain: SendingDomain): string {
  return `${domain.metadata.name}-dkim`;
}
export const DKIM_SECRET_KEY = 'privateKey';
/** What the compiled document's schema accepts as a DKIM key; checked per domain so one bad key leaves only its domain out. */
const PEM_PRIVATE_KEY = /^-----BEGIN (RSA )?PRIVATE KEY-----/;
/** The key in an API key Secret when `secretRef.key` is not given. */
export const API_KEY_SECRET_KEY = 'apiKey';

/** Where the operator keeps the key it generated for an ApiKey without `secretRef`. */
export type GeneratedKeySecret = (resource: ApiKey) => { name: string; key?: string } | undefined;

/** Which selector signs, and which key of the `<name>-dkim` Secret holds its private key. */
export type SigningKey = (domain: SendingDomain) => { selector: string; secretKey: string };
const specSigningKey: SigningKey = (domain) => ({ selector: domain.spec.dkim?.selector ?? 'mtrelay', secretKey: DKIM_SECRET_KEY });

function compileDomains(domains: SendingDomain[], secrets: Map<string, Secret>, problems: string[], signingKey: SigningKey = specSigningKey): Record<string, CompiledNamespace> {
  const namespaces: Record<string, CompiledNamespace> = {};
  const owner = new Map<string, string>();
  for (const resource of domains) {
    const namespace = resource.metadata.namespace ?? DEFAULT_NAMESPACE;
    const domain = resource.spec.domain;
    const claimedBy = owner.get(domain);
    if (claimedBy) {
      problems.push(`${label(resource)}: domain ${domain} is already claimed by ${claimedBy}`);
      continue;
    }
    owner.set(domain, label(resource));
    const signing = signingKey(resource);
    const dkimSecret = secrets.get(`${namespace}/${dkimSecretName(resource)}`);
    const dkimPrivateKey = dkimSecret ? secretValue(dkimSecret, signing.secretKey) : undefined;
    if (dkimSecret && !PEM_PRIVATE_KEY.test(dkimPrivateKey ?? '')) {
      problems.push(`${label(resource)}: Secret ${namespace}/${dkimSecretName(resource)} has no PEM private key "${signing.secretKey}"`);
      continue;
    }
    const entry = (namespaces[namespace] ??= { domains: {} });
    entry.domains[domain] = {
      domain,
      resource: resource.metadata.name,
      dkimSelector: signing.selector,
      ...(dkimPrivateKey ? { dkimPrivateKey: `${dkimPrivateKey}\n` } : {}),
      ...(resource.spec.trackingDomain ? { trackingDomain: resource.spec.trackingDomain } : {}),
    };
  }
  return namespaces;
}

function compileApiKeys(keys: ApiKey[], secrets: Map<string, Secret>, problems: string[], generatedKeySecret?: GeneratedKeySecret): CompiledApiKey[] {
  const compiled: CompiledApiKey[] = [];
  const seenHashes = new Map<string, string>();
  // A fixed order, so which of two keys sharing a value is refused does not depend on list order.
  const ordered = [...keys].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  for (const resource of ordered) {
    const namespace = resource.metadata.namespace ?? DEFAULT_NAMESPACE;
    const id = `${namespace}/${resource.metadata.name}`;
    const ref = resource.spec.secretRef ?? generatedKeySecret?.(resource);
    if (!ref) {
      problems.push(`${label(resource)}: spec.secretRef is required here (only the operator generates keys)`);
      continue;
    }
    const secretKey = ref.key ?? API_KEY_SECRET_KEY;
    const secret = secrets.get(`${namespace}/${ref.name}`);
    if (!secret) {
      problems.push(`${label(resource)}: Secret ${namespace}/${ref.name} not found`);
      continue;
    }
    const key = secretValue(secret, secretKey);
    if (!key) {
      problems.push(`${label(resource)}: Secret ${namespace}/${ref.name} has no key "${secretKey}"`);
      continue;
    }
    if (key.length < MIN_API_KEY_LENGTH) {
      problems.push(`${label(resource)}: the API key in Secret ${namespace}/${ref.name} is shorter than ${MIN_API_KEY_LENGTH} characters`);
      continue;
    }
    const sha256 = sha256Hex(key);
    const sharedWith = seenHashes.get(sha256);
    if (sharedWith) {
      // Never name a resource of another namespace (account): that would tell one tenant about another.
      const named = sharedWith.startsWith(`${namespace}/`) ? `ApiKey ${sharedWith}` : 'another ApiKey';
      problems.push(`${label(resource)}: uses the same key as ${named}; every ApiKey needs its own`);
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
    });
  }
  return compiled.sort((a, b) => a.id.localeCompare(b.id));
}

/** Which Secret keys hold a webhook's credentials, by auth type. */
const WEBHOOK_SECRET_KEYS = { none: [], basic: ['username', 'password'], bearer: ['token'], hmac: ['secret'] } as const;

function compileWebhooks(webhooks: Webhook[], secrets: Map<string, Secret>, problems: string[]): { namespace: string; compiled: CompiledWebhook }[] {
  const compiled: { namespace: string; compiled: CompiledWebhook }[] = [];
  for (const resource of [...webhooks].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const namespace = resource.metadata.namespace ?? DEFAULT_NAMESPACE;
    const type = resource.spec.auth?.type ?? 'none';
    const values: Record<string, string> = {};
    const ref = resource.spec.auth?.secretRef;
    if (type !== 'none') {
      const secret = ref ? secrets.get(`${namespace}/${ref.name}`) : undefined;
      if (!secret) {
        problems.push(`Webhook ${namespace}/${resource.metadata.name}: Secret ${namespace}/${ref?.name ?? '(none)'} not found`);
        continue;
      }
      const missing = WEBHOOK_SECRET_KEYS[type].filter((key) => !(values[key] = secretValue(secret, key) ?? ''));
      if (missing.length) {
        problems.push(`Webhook ${namespace}/${resource.metadata.name}: Secret ${namespace}/${ref!.name} has no ${missing.map((k) => `"${k}"`).join(', ')} (needed for ${type})`);
        continue;
      }
    }
    compiled.push({ namespace, compiled: {
      name: resource.metadata.name, url: resource.spec.url, events: [...(resource.spec.events ?? [])].sort(),
      auth: { type, ...values } as CompiledWebhook['auth'],
    } });
  }
  return compiled;
}

/** Sorted-key JSON, so that equal content always hashes to the same revision. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v);
}

/** Compiles the documents, or throws ConfigCompileError listing every problem found. */
export function compileConfig(documents: SourcedDocument[]): CompiledConfig {
  const problems: string[] = [];
  const resources = validateAll(documents, problems);
  const domains = indexUnique(resources.filter((r): r is SendingDomain => r.kind === 'SendingDomain'), problems);
  const keys = indexUnique(resources.filter((r): r is ApiKey => r.kind === 'ApiKey'), problems);
  const secrets = indexUnique(resources.filter((r): r is Secret => r.kind === 'Secret'), problems);
  const { config, problems: more } = compileResources({ domains: [...domains.values()], apiKeys: [...keys.values()], secrets });
  problems.push(...more);
  if (problems.length) throw new ConfigCompileError(problems);
  return config;
}

export interface CompileInput {
  /** In order of precedence: when two claim one domain, the first keeps it. */
  domains: SendingDomain[];
  apiKeys: ApiKey[];
  webhooks?: Webhook[];
  /** Defaults to the selector in the spec and the Secret's `privateKey`. */
  signingKey?: SigningKey;
  /** Keyed `namespace/name`. */
  secrets: Map<string, Secret>;
  generatedKeySecret?: GeneratedKeySecret;
}

/**
 * Compiles resources that are already valid (the API server checked them against the CRDs);
 * a resource with a problem is left out and its problem reported, the rest compile.
 */
export function compileResources(input: CompileInput): { config: CompiledConfig; problems: string[] } {
  const problems: string[] = [];
  const namespaces = compileDomains(input.domains, input.secrets, problems, input.signingKey);
  const apiKeys = compileApiKeys(input.apiKeys, input.secrets, problems, input.generatedKeySecret);
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
    throw new ConfigCompileError([`compiled config ${describeFirstError(validateCompiledConfig.errors)}`]);
  }
  return { config, problems };
}

/** The relay faces the internet: its config holds no private keys. */
export function relayView(config: CompiledConfig): CompiledConfig {
  // Webhooks carry credentials and the relay does not send them: left out whole.
  const namespaces = Object.fromEntries(Object.entries(config.namespaces).map(([ns, { domains }]) => [ns, {
    domains: Object.fromEntries(Object.entries(domains).map(([name, { dkimPrivateKey: _secret, ...rest }]) => [name, rest])),
  }]));
  return { ...config, namespaces };
}
