// How mtrelay names the Secrets that belong to a resource, and the keys inside them. The
// operator's controllers, the config compiler and standalone's first start all use these,
// so a Secret written by one is found by the others.
import type { ApiKey } from './types.ts';

/** The DKIM key of SendingDomain NAME lives in Secret `NAME-dkim`. */
const DKIM_SUFFIX = '-dkim';
/** The key the operator generates for ApiKey NAME (no `secretRef`) lives in Secret `NAME-apikey`. */
const API_KEY_SUFFIX = '-apikey';

/** Key of the PEM private key that signs, in a `-dkim` Secret. */
export const DKIM_PRIVATE_KEY = 'privateKey';
/** During a rotation: the previous selector's key, signing until the new record is in DNS. */
export const PREVIOUS_DKIM_PRIVATE_KEY = 'previousPrivateKey';
/** On an operator-made `-dkim` Secret: the selector its key was made for, and the one still signing. */
export const DKIM_SELECTOR_ANNOTATION = 'mtrelay.dev/dkim-selector';
export const PREVIOUS_DKIM_SELECTOR_ANNOTATION = 'mtrelay.dev/previous-dkim-selector';
export const DEFAULT_DKIM_SELECTOR = 'mtrelay';
export const DEFAULT_DKIM_KEY_BITS = 2048;

/** Key of the API key in its Secret when `secretRef.key` is not given. */
export const API_KEY_SECRET_KEY = 'apiKey';

export function dkimSecretName(sendingDomainName: string): string {
  return `${sendingDomainName}${DKIM_SUFFIX}`;
}

/** The SendingDomain a `-dkim` Secret belongs to by name, if it is named like one. */
export function sendingDomainOfSecret(secretName: string): string | undefined {
  return secretName.endsWith(DKIM_SUFFIX) ? secretName.slice(0, -DKIM_SUFFIX.length) : undefined;
}

export function generatedApiKeySecretName(apiKeyName: string): string {
  return `${apiKeyName}${API_KEY_SUFFIX}`;
}

/** Where an ApiKey's key is read from: its `secretRef`, or else the Secret mtrelay generates for it. */
export function apiKeySecret(apiKey: Pick<ApiKey, 'metadata' | 'spec'>): { name: string; key: string; generated: boolean } {
  const ref = apiKey.spec.secretRef;
  if (ref) return { name: ref.name, key: ref.key ?? API_KEY_SECRET_KEY, generated: false };
  return { name: generatedApiKeySecretName(apiKey.metadata.name), key: API_KEY_SECRET_KEY, generated: true };
}
