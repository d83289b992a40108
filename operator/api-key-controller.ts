// ApiKey: generates a high-entropy key into an owned Secret when no secretRef is given,
// checks the key it will be compiled from, and reports a short prefix and Ready (with the
// reason when not: Secret missing, key too short, disabled, expired). The key itself never
// leaves its Secret; the config carries only its SHA-256.
import type { Logger } from 'pino';
import { compileResources } from '../shared/config/compiler.ts';
import { newApiKeyValue } from '../shared/config/credentials.ts';
import { apiKeySecret } from '../shared/config/secret-names.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { Informer } from '../shared/kube/informer.ts';
import { setConditions, type ConditionInput } from './conditions.ts';
import type { Controller } from './controller.ts';
import type { EventRecorder } from '../shared/kube/events.ts';
import { announceReady, applyStatus, eventTarget } from './status.ts';
import {
  MANAGED_BY, SECRET_LABEL, isOwnedBy, keyOf, ownerReference, paths, splitKey,
  type ApiKeyObject, type ApiKeyStatus, type SecretObject,
} from './resources.ts';
import type { ReconcileResult } from './work-queue.ts';

export interface ApiKeyControllerOptions {
  client: KubeClient;
  apiKeys: Informer<ApiKeyObject>;
  secrets: Informer<SecretObject>;
  events: EventRecorder;
  logger: Logger;
}

/** How often a key refused for its Secret is looked at again. */
const RECHECK_MS = 30_000;

/** Longest a requeue may wait (setTimeout's limit), for expiry far in the future. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class ApiKeyController implements Controller {
  readonly kind = 'ApiKey';
  readonly #o: ApiKeyControllerOptions;

  constructor(options: ApiKeyControllerOptions) {
    this.#o = options;
  }

  readonly watches = {
    ApiKey: (apiKey: ApiKeyObject) => [keyOf(apiKey)],
    // The key's Secret: the generated one by owner, a user's one by the ApiKeys that name it.
    Secret: (secret: SecretObject) => {
      const { namespace, name } = secret.metadata;
      const owners = (secret.metadata.ownerReferences ?? []).filter((o) => o.kind === 'ApiKey').map((o) => `${namespace}/${o.name}`);
      return [...owners, ...this.#o.apiKeys.list(namespace).filter((k) => k.spec.secretRef?.name === name).map(keyOf)];
    },
  };

  keys(): string[] {
    return this.#o.apiKeys.list().map(keyOf);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const apiKey = this.#o.apiKeys.get(name, namespace);
    if (!apiKey || apiKey.metadata.deletionTimestamp) return; // being deleted: nothing to make right
    const ref = apiKeySecret(apiKey);
    const generated = ref.generated;
    const secretName = ref.name;
    // The cache holds only Secrets labelled for mtrelay; a direct read tells "missing" from "not labelled".
    let secret = this.#o.secrets.get(secretName, namespace) ?? await this.#o.client.get<SecretObject>(paths.secrets(namespace, secretName));
    let refusal: ConditionInput | undefined;
    if (generated && !secret) secret = await this.#generate(apiKey, ref);
    else if (generated && secret && isOwnedBy(secret, apiKey) && secret.metadata.labels?.[SECRET_LABEL] === undefined) {
      // Our own Secret lost its label (edited by hand): put it back, or the config would miss the key.
      await this.#o.client.mergePatch(paths.secrets(namespace, secretName), { metadata: { labels: { [SECRET_LABEL]: 'api-key' } } });
    }
    else if (generated && secret && !isOwnedBy(secret, apiKey)) {
      refusal = { type: 'Ready', status: 'False', reason: 'SecretNotOwned', message: `Secret ${secretName} exists and is not managed by mtrelay; name it in spec.secretRef to use it, or delete it` };
    } else if (!generated && secret && secret.metadata.labels?.[SECRET_LABEL] === undefined) {
      refusal = { type: 'Ready', status: 'False', reason: 'SecretNotLabelled',
        message: `Secret ${secretName} is not labelled ${SECRET_LABEL}; label it to let mtrelay use it (kubectl label secret -n ${namespace} ${secretName} ${SECRET_LABEL}=api-key)` };
    }

    const secrets = new Map(secret ? [[`${namespace}/${secretName}`, secret]] : []);
    const { config, problems } = compileResources({ domains: [], apiKeys: [apiKey], secrets });
    const compiled = config.apiKeys[0];
    const expiresAt = apiKey.spec.expiresAt;
    const expired = expiresAt !== undefined && Date.parse(expiresAt) <= Date.now();
    const condition: ConditionInput = refusal ? refusal
      : !compiled ? { type: 'Ready', status: 'False', reason: secret ? 'InvalidKey' : 'SecretNotFound', message: problems[0]?.message ?? 'key not usable' }
        : apiKey.spec.disabled ? { type: 'Ready', status: 'False', reason: 'Disabled', message: 'spec.disabled is true: AUTH with this key fails' }
          : expired ? { type: 'Ready', status: 'False', reason: 'Expired', message: `expired at ${expiresAt}: AUTH with this key fails` }
            : { type: 'Ready', status: 'True', reason: 'Active', message: `authenticates with ${compiled.permissions.join(', ')}` };

    const status: ApiKeyStatus = {
      observedGeneration: apiKey.metadata.generation,
      ...(compiled && !refusal ? { prefix: compiled.prefix } : {}),
      secretName,
      ...(expiresAt ? { expiresAt } : {}),
      conditions: setConditions(apiKey.status?.conditions, [condition], apiKey.metadata.generation),
    };
    if (await applyStatus(this.#o.client, 'ApiKey', apiKey, status)) announceReady(this.#o.events, eventTarget('ApiKey', apiKey), apiKey.status?.conditions, condition);
    // Flip to Expired on time, even if nothing else happens.
    if (expiresAt && !expired) return { requeueAfterMs: Math.min(Date.parse(expiresAt) - Date.now() + 50, MAX_DELAY_MS) };
    // A Secret created or changed later without the label fires no event here: look again now and then.
    if (condition.status === 'False' && condition.reason !== 'Disabled' && condition.reason !== 'Expired') return { requeueAfterMs: RECHECK_MS };
    return undefined;
  }

  async #generate(apiKey: ApiKeyObject, ref: { name: string; key: string }): Promise<SecretObject> {
    const secretName = ref.name;
    const { namespace } = apiKey.metadata;
    const secret = await this.#o.client.create<SecretObject>(paths.secrets(namespace), {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: {
        name: secretName, namespace, labels: { ...MANAGED_BY, [SECRET_LABEL]: 'api-key', 'mtrelay.dev/api-key': apiKey.metadata.name },
        ownerReferences: [ownerReference({ kind: 'ApiKey', metadata: apiKey.metadata })],
      },
      data: { [ref.key]: Buffer.from(newApiKeyValue()).toString('base64') },
    });
    this.#o.events.normal(eventTarget('ApiKey', apiKey), 'KeyGenerated', `generated a key into Secret ${secretName} (key ${ref.key})`);
    this.#o.logger.info({ resource: `${namespace}/${apiKey.metadata.name}`, secret: secretName }, 'API key generated');
    return secret;
  }
}
