// The resources the operator reads and writes, as they come from the API server.
import type { AccountSettings, ApiKey, SendingDomain, Secret, Webhook } from '../shared/config/types.ts';
import type { KubeObject } from '../shared/kube/client.ts';
import { resourcePath } from '../shared/kube/client.ts';
import type { Condition } from './conditions.ts';

export const GROUP_VERSION = 'mtrelay.dev/v1alpha1';
export const FIELD_MANAGER = 'mtrelay-operator';
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': FIELD_MANAGER };
/**
 * The label that lets mtrelay use a Secret. The operator caches only Secrets that carry it,
 * and refuses to read a user's Secret without it: a resource naming a Secret must not be a
 * way to read Secrets its author could not read themselves.
 */
export const SECRET_LABEL = 'mtrelay.dev/secret';

type ApiMeta = NonNullable<KubeObject['metadata']> & { name: string; namespace: string; uid: string; generation?: number };

export interface DnsRecord {
  purpose: 'dkim' | 'spf' | 'tracking' | 'dmarc';
  type: 'TXT' | 'CNAME';
  name: string;
  value: string;
  verified: boolean;
}

export interface SendingDomainStatus {
  observedGeneration?: number;
  dkim?: { selector: string; keySize: number; secretName: string; signingSelector?: string };
  dnsRecords?: DnsRecord[];
  /** fbl+<domain>@<bounce domain>: the address to register with the providers' feedback loops. */
  feedbackLoopAddress?: string;
  /** When the DKIM record was first found in DNS: the domain's ownership is proven from then on. */
  verifiedAt?: string;
  lastCheckedAt?: string;
  conditions?: Condition[];
}

export interface ApiKeyStatus {
  observedGeneration?: number;
  prefix?: string;
  secretName?: string;
  expiresAt?: string;
  conditions?: Condition[];
}

export type SendingDomainObject = Omit<SendingDomain, 'metadata'> & { metadata: ApiMeta; status?: SendingDomainStatus };
export type ApiKeyObject = Omit<ApiKey, 'metadata'> & { metadata: ApiMeta; status?: ApiKeyStatus };
export type SecretObject = Omit<Secret, 'metadata'> & { metadata: ApiMeta };
export type WebhookObject = Omit<Webhook, 'metadata'> & { metadata: ApiMeta; status?: { observedGeneration?: number; conditions?: Condition[] } };

export type AccountSettingsObject = Omit<AccountSettings, 'metadata'> & { metadata: ApiMeta };

/** The Secrets a Webhook names: its credentials and its signing key. */
export function webhookSecretNames(webhook: WebhookObject): string[] {
  return [webhook.spec.auth?.secretRef?.name, webhook.spec.signing?.secretRef.name].filter((n): n is string => Boolean(n));
}

export const paths = {
  sendingDomains: (namespace?: string, name?: string) => resourcePath(GROUP_VERSION, 'sendingdomains', namespace, name),
  apiKeys: (namespace?: string, name?: string) => resourcePath(GROUP_VERSION, 'apikeys', namespace, name),
  webhooks: (namespace?: string, name?: string) => resourcePath(GROUP_VERSION, 'webhooks', namespace, name),
  accountSettings: (namespace?: string, name?: string) => resourcePath(GROUP_VERSION, 'accountsettings', namespace, name),
  secrets: (namespace?: string, name?: string) => resourcePath('v1', 'secrets', namespace, name),
};

export function splitKey(key: string): { namespace: string; name: string } {
  const [namespace = '', name = ''] = key.split('/');
  return { namespace, name };
}

export const keyOf = (object: { metadata: { namespace?: string; name: string } }) => `${object.metadata.namespace ?? ''}/${object.metadata.name}`;

/** The ownerReference that makes a Secret belong to (and be collected with) its resource. */
export function ownerReference(owner: { kind: string; metadata: ApiMeta }) {
  return { apiVersion: GROUP_VERSION, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true };
}

export function isOwnedBy(object: KubeObject, owner: { metadata: ApiMeta }): boolean {
  return (object.metadata?.ownerReferences ?? []).some((ref) => ref.uid === owner.metadata.uid && ref.controller);
}
