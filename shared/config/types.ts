// The resources users write (as for `kubectl apply`) and the compiled config document
// that relay and deliverer pods read. JSON Schemas for each live in ./schemas/.

export const API_GROUP_VERSION = 'mtrelay.dev/v1alpha1';
export const CONFIG_API_VERSION = 'mtrelay.dev/config/v1';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  generation?: number;
}

export type Permission = 'smtp/send' | 'events/read' | 'suppressions/manage';
export const SMTP_SEND: Permission = 'smtp/send';

export interface SendingDomain {
  apiVersion: typeof API_GROUP_VERSION;
  kind: 'SendingDomain';
  metadata: ObjectMeta;
  spec: {
    domain: string;
    dkim?: { selector?: string; algorithm?: 'rsa-sha256'; keySize?: 2048 | 3072 | 4096 };
    trackingDomain?: string;
  };
}

export interface ApiKey {
  apiVersion: typeof API_GROUP_VERSION;
  kind: 'ApiKey';
  metadata: ObjectMeta;
  spec: {
    permissions: Permission[];
    secretRef?: { name: string; key?: string };
    disabled?: boolean;
    expiresAt?: string;
    limits?: ApiKeyLimits;
  };
}

/**
 * What one key may send, counted across every relay of the fleet. A message is one recipient
 * (an envelope recipient or an X-MT-ATTR cc, bcc or archive address), as it is delivered.
 */
export interface ApiKeyLimits {
  /** Messages in any 60 minutes. */
  messagesPerHour?: number;
  /** Messages in any 24 hours. */
  messagesPerDay?: number;
  /** Recipients of one submission: envelope recipients and X-MT-ATTR addresses together. */
  recipientsPerMessage?: number;
}

export interface Secret {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: ObjectMeta;
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export type WebhookEvent = 'injection' | 'delivery' | 'delay' | 'bounce' | 'policy_rejection' | 'open' | 'initial_open' | 'click' | 'out_of_band' | 'spam_complaint' | 'list_unsubscribe' | 'link_unsubscribe';

export interface Webhook {
  apiVersion: typeof API_GROUP_VERSION;
  kind: 'Webhook';
  metadata: ObjectMeta;
  spec: {
    url: string;
    allowInsecureUrl?: boolean;
    events?: WebhookEvent[];
    auth?: { type: 'none' | 'basic' | 'bearer' | 'oauth2'; secretRef?: { name: string }; tokenUrl?: string; scope?: string };
    signing?: { secretRef: { name: string } };
  };
}

/**
 * An account's defaults (one per namespace, named `default`): whether its mail is tracked when
 * X-MT-ATTR does not say, and the tracking domain of sending domains that name none.
 */
export interface AccountSettings {
  apiVersion: typeof API_GROUP_VERSION;
  kind: 'AccountSettings';
  metadata: ObjectMeta;
  spec: {
    tracking?: { opens?: boolean; clicks?: boolean; domain?: string };
    /** false: no List-Unsubscribe on the account's mail (it runs its own); default true. */
    listUnsubscribe?: boolean;
  };
}

/** The only name an AccountSettings resource may have. */
export const ACCOUNT_SETTINGS_NAME = 'default';

export type Resource = SendingDomain | ApiKey | Secret | AccountSettings;

/** A sending domain as the relay and deliverer see it. */
export interface CompiledDomain {
  domain: string;
  resource: string;
  dkimSelector: string;
  /** PEM private key; only in the deliverer's part of the config, never the relay's. */
  dkimPrivateKey?: string;
  /**
   * Set when the domain has no usable private key (the relay's view has this, never the key):
   * nothing is sent from it. Absent means a key exists, as in configs written before the field.
   */
  noDkimKey?: true;
  trackingDomain?: string;
}

/** An API key as the relay sees it: never the key, only its SHA-256. */
export interface CompiledApiKey {
  /** `namespace/name` of the ApiKey resource. */
  id: string;
  namespace: string;
  /** Hex SHA-256 of the key. */
  sha256: string;
  /** The first characters of the key, to tell keys apart in logs and status. */
  prefix: string;
  permissions: Permission[];
  disabled: boolean;
  expiresAt?: string;
  limits?: ApiKeyLimits;
}

/** A webhook target with its credentials: only in the dispatcher's part of the config. */
export interface CompiledWebhook {
  name: string;
  url: string;
  /** Empty: every event type. */
  events: WebhookEvent[];
  auth: { type: 'none' } | { type: 'basic'; username: string; password: string } | { type: 'bearer'; token: string }
    | { type: 'oauth2'; clientId: string; clientSecret: string; tokenUrl: string; scope?: string };
  /** The HMAC-SHA256 key batches are signed with. */
  signingSecret?: string;
}

/** The account's defaults as the deliverer applies them. */
export interface CompiledSettings {
  openTracking: boolean;
  clickTracking: boolean;
  trackingDomain?: string;
  /** Present (false) only when the account turned one-click unsubscribe off. */
  listUnsubscribe?: false;
}

export interface CompiledNamespace {
  domains: Record<string, CompiledDomain>;
  settings?: CompiledSettings;
  webhooks?: CompiledWebhook[];
}

/** The document the compiler produces; `revision` is a hash of everything else. */
export interface CompiledConfig {
  apiVersion: typeof CONFIG_API_VERSION;
  revision: string;
  namespaces: Record<string, CompiledNamespace>;
  apiKeys: CompiledApiKey[];
  /** The relay's view only: the TLS session ticket key every relay replica shares (base64, 48 bytes), and when it was made. */
  tls?: { ticketKey: string; issuedAt: string };
}
