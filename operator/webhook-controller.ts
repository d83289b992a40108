// Webhook: checks that the credentials its auth type needs are in the Secret it names, and
// reports Ready. The target and its credentials go only into the deliverer's config.
import { compileResources } from '../shared/config/compiler.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { Informer } from '../shared/kube/informer.ts';
import { setConditions, type ConditionInput } from './conditions.ts';
import type { Controller } from './controller.ts';
import type { EventRecorder } from '../shared/kube/events.ts';
import { SECRET_LABEL, keyOf, paths, splitKey, webhookSecretNames, type SecretObject, type WebhookObject } from './resources.ts';
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
    // The credentials and signing Secrets, by the webhooks that name them.
    Secret: (secret: SecretObject) => this.#o.webhooks.list(secret.metadata.namespace)
      .filter((w) => webhookSecretNames(w).includes(secret.metadata.name)).map(keyOf),
  };

  keys(): string[] {
    return this.#o.webhooks.list().map(keyOf);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const webhook = this.#o.webhooks.get(name, namespace);
    if (!webhook || webhook.metadata.deletionTimestamp) return; // being deleted: nothing to make right
    // Only Secrets labelled for mtrelay are cached; a direct read tells "missing" from "not labelled".
    const secrets = new Map<string, SecretObject>();
    let unlabelled: string | undefined;
    for (const ref of webhookSecretNames(webhook)) {
      const cached = this.#o.secrets.get(ref, namespace);
      const direct = cached ? undefined : await this.#o.client.get<SecretObject>(paths.secrets(namespace, ref));
      if (direct && direct.metadata.labels?.[SECRET_LABEL] === undefined) unlabelled ??= ref;
      else if (cached ?? direct) secrets.set(`${namespace}/${ref}`, (cached ?? direct)!);
    }
    const { problems } = compileResources({ domains: [], apiKeys: [], webhooks: [webhook], secrets });
    const condition: ConditionInput = unlabelled
      ? { type: 'Ready', status: 'False', reason: 'SecretNotLabelled',
        message: `Secret ${unlabelled} is not labelled ${SECRET_LABEL}; label it to let mtrelay send its credentials (kubectl label secret -n ${namespace} ${unlabelled} ${SECRET_LABEL}=webhook)` }
      : problems.length
      ? { type: 'Ready', status: 'False', reason: /not found/.test(problems[0]!.message) ? 'SecretNotFound' : 'InvalidSecret', message: problems[0]!.message }
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
