// Status is written the same way by every controller: with server-side apply under the
// operator's field manager, and only when it changed (an unchanged status is no write, so a
// resync of a thousand resources costs nothing). Events name the object they are about.
import { canonicalJson } from '../shared/config/hash.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { Condition, ConditionInput } from './conditions.ts';
import type { EventRecorder, EventTarget } from '../shared/kube/events.ts';
import { FIELD_MANAGER, GROUP_VERSION, paths } from './resources.ts';

export type StatusKind = 'SendingDomain' | 'ApiKey' | 'Webhook';

const STATUS_PATHS = { SendingDomain: paths.sendingDomains, ApiKey: paths.apiKeys, Webhook: paths.webhooks };

interface ObjectWithStatus {
  metadata: EventTarget['metadata'];
  status?: object;
}

/** The object as an Event's subject. */
export function eventTarget(kind: StatusKind, object: ObjectWithStatus): EventTarget {
  return { apiVersion: GROUP_VERSION, kind, metadata: object.metadata };
}

/** Applies `status` when it differs from the object's; resolves true when it wrote. */
export async function applyStatus(client: KubeClient, kind: StatusKind, object: ObjectWithStatus, status: object): Promise<boolean> {
  if (canonicalJson(object.status ?? {}) === canonicalJson(status)) return false;
  const { name, namespace } = object.metadata;
  await client.apply(`${STATUS_PATHS[kind](namespace, name)}/status`, { apiVersion: GROUP_VERSION, kind, metadata: { name, namespace }, status }, FIELD_MANAGER);
  return true;
}

/** An Event when Ready changed its reason: Warning when it is not True, and Normal too unless `warningsOnly`. */
export function announceReady(events: EventRecorder, target: EventTarget, before: Condition[] | undefined, ready: ConditionInput, warningsOnly = false): void {
  if (before?.find((c) => c.type === 'Ready')?.reason === ready.reason) return;
  if (ready.status !== 'True') events.warning(target, ready.reason, ready.message);
  else if (!warningsOnly) events.normal(target, ready.reason, ready.message);
}
