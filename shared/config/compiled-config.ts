// The compiled config document as pods receive it: its schema check (a document read from
// Secrets is checked before it is put in force), the relay's view of it, and the TLS ticket
// key the relay's view carries.
import { randomBytes } from 'node:crypto';
import { ajv } from '../validation.ts';
import { canonicalJson, sha256Hex } from './hash.ts';
import compiledConfigSchema from './schemas/compiled-config.schema.json' with { type: 'json' };
import type { CompiledConfig } from './types.ts';

export const validateCompiledConfig = ajv.compile<CompiledConfig>(compiledConfigSchema);

/** The relay faces the internet: its config holds no private keys and no webhook credentials. */
export function relayView(config: CompiledConfig): CompiledConfig {
  const namespaces = Object.fromEntries(Object.entries(config.namespaces).map(([ns, { domains }]) => [ns, {
    domains: Object.fromEntries(Object.entries(domains).map(([name, { dkimPrivateKey: _secret, ...rest }]) => [name, rest])),
  }]));
  return { ...config, namespaces };
}

/** The deliverer signs and tracks: private keys and settings, no API keys and no webhook credentials. */
export function delivererView(config: CompiledConfig): CompiledConfig {
  const namespaces = Object.fromEntries(Object.entries(config.namespaces).map(([ns, { webhooks: _credentials, ...rest }]) => [ns, rest]));
  return { ...config, namespaces, apiKeys: [] };
}

/** The dispatcher posts events: webhooks and their credentials only. */
export function dispatcherView(config: CompiledConfig): CompiledConfig {
  const namespaces = Object.fromEntries(Object.entries(config.namespaces)
    .filter(([, n]) => n.webhooks?.length).map(([ns, n]) => [ns, { domains: {}, webhooks: n.webhooks! }]));
  return { ...config, namespaces, apiKeys: [] };
}

/** Node.js's TLS ticket key: 16 bytes of name, 16 of HMAC secret, 16 of AES key. */
export const TICKET_KEY_BYTES = 48;
export const newTicketKey = (): Buffer => randomBytes(TICKET_KEY_BYTES);

/** The relay's view with the ticket key all replicas share; the revision covers the key, so a new key is a new config. */
export function withTicketKey(config: CompiledConfig, tls: NonNullable<CompiledConfig['tls']>): CompiledConfig {
  return { ...config, tls, revision: sha256Hex(canonicalJson({ revision: config.revision, tls })) };
}
