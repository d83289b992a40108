// Webhook: checks that the credentials its auth type needs are in the Secret it names, and
// reports Ready. The target and its credentials go only into the deliverer's config.
import { compileResources } from '../shared/config/compiler.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { Informer } from '../shared/kube/informer.ts';
import { setConditions, type ConditionInput } from './conditions.ts';
import type { Controller } from './controller.ts';
import type { EventRecorder } from './events.ts';
import { SECRET_LABEL, keyOf, paths, splitKey, type SecretObject, type WebhookObject } from './resources.ts';
import { announceReady, applyStatus, eventTarget } from './status.ts';
import type { ReconcileResult } from './work-queue.ts';

export interface WebhookControllerOptions {
  client: KubeClient;
  webhooks: Informer<WebhookObject>;
  secrets: Informer<SecretObject>;
  events: EventRecorder;
}

export class WebhookController implements Controller {
  readonly kind = 'Webhook';
  readonly #o: WebhookControllerOptions;

  constructor(options: WebhookControllerOptions) {
    this.#o = options;
  }

  readonly watches = {
    Webhook: (webhook: WebhookObject) => [keyOf(webhook)],
    // The credentials Secret, by the webhooks that name it.
    Secret: (secret: SecretObject) => this.#o.webhooks.list(secret.metadata.namespace)
      .filter((w) => w.spec.auth?.secretRef?.name === secret.metadata.name).map(keyOf),
  };

  keys(): string[] {
    return this.#o.webhooks.list().map(keyOf);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const webhook = this.#o.webhooks.get(name, namespace);
    if (!webhook || webhook.metadata.deletionTimestamp) return; // being deleted: nothing to make right
    const ref = webhook.spec.auth?.secretRef?.name;
    // Only Secrets labelled for mtrelay are cached; a direct read tells "missing" from "not labelled".
    const direct = ref && !this.#o.secrets.get(ref, namespace) ? await this.#o.client.get<SecretObject>(paths.secrets(namespace, ref)) : undefined;
    const unlabelled = direct && direct.metadata.labels?.[SECRET_LABEL] === undefined ? direct : undefined;
    const secret = ref ? this.#o.secrets.get(ref, namespace) ?? (unlabelled ? undefined : direct) : undefined;
    const secrets = new Map(secret ? [[`${namespace}/${ref}`, secret]] : []);
    const { problems } = compileResources({ domains: [], apiKeys: [], webhooks: [webhook], secrets });
    const condition: ConditionInput = unlabelled
      ? { type: 'Ready', status: 'False', reason: 'SecretNotLabelled',
        message: `Secret ${ref} is not labelled ${SECRET_LABEL}; label it to let mtrelay send its credentials (kubectl label secret -n ${namespace} ${ref} ${SECRET_LABEL}=webhook)` }
      : problems.length
      ? { type: 'Ready', status: 'False', reason: secret ? 'InvalidSecret' : 'SecretNotFound', message: problems[0]!.message }
      : { type: 'Ready', status: 'True', reason: 'Ready', message: `events ${webhook.spec.events?.length ? webhook.spec.events.join(', ') : '(all)'} go to ${webhook.spec.url}` };
    const status = { observedGeneration: webhook.metadata.generation, conditions: setConditions(webhook.status?.conditions, [condition], webhook.metadata.generation) };
    // A Secret created later without the label fires no event here: look again now and then.
    const recheck = condition.status === 'False' ? { requeueAfterMs: 30_000 } : undefined;
    if (await applyStatus(this.#o.client, 'Webhook', webhook, status)) {
      announceReady(this.#o.events, eventTarget('Webhook', webhook), webhook.status?.conditions, condition, true);
    }
    return recheck;
  }
}
