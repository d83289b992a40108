// What a controller is to the operator's wiring (after controller-runtime's builder): the
// kinds it watches and, for an event on an object of such a kind, the keys of its own it
// must reconcile. The operator runs one work queue per controller and feeds it from the
// shared informers; no controller knows about another.
import type { AccountSettingsObject, ApiKeyObject, SecretObject, SendingDomainObject, WebhookObject } from './resources.ts';
import type { ReconcileResult } from './work-queue.ts';

export interface WatchedObjects {
  SendingDomain: SendingDomainObject;
  ApiKey: ApiKeyObject;
  Webhook: WebhookObject;
  AccountSettings: AccountSettingsObject;
  Secret: SecretObject;
}
export type WatchedKind = keyof WatchedObjects;

/** For each watched kind: the keys to reconcile when such an object is added, changed or deleted. */
export type Watches = { [K in WatchedKind]?: (object: WatchedObjects[K]) => string[] };

export interface Controller {
  /** Its name in metrics and logs (the kind it reconciles, or `Config`). */
  readonly kind: string;
  readonly watches: Watches;
  /** Every key it is responsible for: reconciled when this replica starts leading. */
  keys(): string[];
  reconcile(key: string): Promise<ReconcileResult>;
  /** Also reconcile every key after each full list of a watched kind (the aggregate does: nothing may be missed). */
  readonly resyncAfterList?: boolean;
  /** Adds wait this long first, so that a burst of changes makes one reconcile. */
  batchDelayMs?(): number;
  /** Worker count of its queue (default 2). */
  readonly workers?: number;
}
