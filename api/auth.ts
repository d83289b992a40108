// Who is asking: the API key in the Authorization header (as SparkPost's API takes it, bare or
// after "Bearer "), checked like the relay checks SMTP AUTH, by its SHA-256 against the keys in
// force, for one permission. A key sees only its own account (namespace).
import type { IncomingMessage } from 'node:http';
import { sha256Hex } from '../shared/config/hash.ts';
import type { ConfigStore } from '../shared/config/store.ts';
import type { Permission } from '../shared/config/types.ts';

export type Caller = { ok: true; namespace: string; keyId: string } | { ok: false; status: 401 | 403; message: string };

export function authenticate(request: IncomingMessage, store: ConfigStore, permission: Permission): Caller {
  const header = request.headers.authorization?.trim() ?? '';
  const key = header.replace(/^Bearer\s+/i, '');
  if (!key) return { ok: false, status: 401, message: 'An API key is required in the Authorization header' };
  const check = store.checkKey(sha256Hex(key), permission);
  if (check.ok) return { ok: true, namespace: check.key.namespace, keyId: check.key.id };
  if (check.reason === 'no_permission') return { ok: false, status: 403, message: `The API key ${check.key?.id ?? ''} lacks the ${permission} permission` };
  return { ok: false, status: 401, message: 'The API key is unknown, disabled or expired' };
}
