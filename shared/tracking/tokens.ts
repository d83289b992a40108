// Tracking tokens: what an open pixel or a tracked link carries, so that the tracker needs no
// database. A token is `<key id>.<claims>.<mac>`: the claims (kind, transmission, recipient,
// namespace, the link's target, an expiry) as base64url JSON, and an HMAC-SHA256 over the key
// id and the claims with that key. The key id lets keys rotate: the tracker keeps verifying
// tokens of the keys it still holds while new ones are signed with the newest. A token that
// does not verify is worth nothing: the tracker answers 404, never redirects (no open redirect).
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** unsubscribe: the recipient's List-Unsubscribe link (RFC 8058 one-click, and the page behind it). */
export type TrackingKind = 'open' | 'initial_open' | 'click' | 'unsubscribe';

export interface TrackingClaims {
  kind: TrackingKind;
  transmissionId: string;
  rcptTo: string;
  namespace: string;
  /** The link's target (click only): http or https. */
  target?: string;
  /** Unix seconds after which the token is refused. */
  expiresAt: number;
  /** The message's campaign (X-MT-ATTR campaign_id, at most 64 characters), for the event. */
  campaignId?: string;
}

export interface TrackingKey {
  /** Short, URL-safe: it travels in every token. */
  id: string;
  secret: Buffer;
}

/** Keys tokens verify with; `signing` is the one new tokens are signed with. */
export interface TrackingKeyRing {
  signing: TrackingKey;
  keys: ReadonlyMap<string, TrackingKey>;
}

export type Verified = { ok: true; claims: TrackingClaims } | { ok: false; reason: 'malformed' | 'unknown_key' | 'bad_signature' | 'expired' };

/** Longer than any token this code makes; anything longer is refused before any work. */
export const MAX_TOKEN_LENGTH = 4096;
const KEY_ID = /^[A-Za-z0-9_-]{1,16}$/;
const KINDS: Record<TrackingKind, string> = { open: 'o', initial_open: 'i', click: 'c', unsubscribe: 'u' };
const KIND_OF = new Map(Object.entries(KINDS).map(([kind, code]) => [code, kind as TrackingKind]));

export function keyRing(keys: TrackingKey[]): TrackingKeyRing {
  if (!keys.length) throw new Error('a tracking key ring needs at least one key');
  for (const key of keys) {
    if (!KEY_ID.test(key.id)) throw new Error(`tracking key id ${JSON.stringify(key.id)} is not 1 to 16 URL-safe characters`);
    if (key.secret.length < 32) throw new Error(`tracking key ${key.id} is shorter than 32 bytes`);
  }
  return { signing: keys[0]!, keys: new Map(keys.map((k) => [k.id, k])) };
}

/** Each key's secret as a KeyObject, made once: an HMAC with a raw Buffer key costs four times as much. */
const keyObjects = new WeakMap<TrackingKey, KeyObject>();

function mac(key: TrackingKey, signed: string): Buffer {
  let object = keyObjects.get(key);
  if (!object) keyObjects.set(key, (object = createSecretKey(key.secret)));
  return createHmac('sha256', object).update(signed).digest();
}

/** A token for `claims`, signed with the ring's signing key (recipientSigner's, for one token). */
export function signToken(ring: TrackingKeyRing, claims: TrackingClaims): string {
  if (claims.kind === 'click') {
    const protocol = claims.target ? URL.parse(claims.target)?.protocol : undefined;
    if (protocol !== 'http:' && protocol !== 'https:') throw new Error(`only http and https links are tracked, not ${JSON.stringify(claims.target)}`);
  }
  return recipientSigner(ring, claims)(claims.kind, claims.target);
}

/**
 * Tokens for one recipient (the deliverer signs 20 links and two pixels for each): their claims
 * share a prefix (transmission, recipient, namespace, expiry, campaign), padded with JSON blanks
 * to whole base64 groups, so its base64 is computed once; each token then encodes only its own
 * kind and target. One HMAC per token with the key made once (a KeyObject) is cheaper than
 * copying a hash state.
 */
export function recipientSigner(ring: TrackingKeyRing, base: Omit<TrackingClaims, 'kind' | 'target'>): (kind: TrackingKind, target?: string) => string {
  const key = ring.signing;
  let prefix = `{"t":${JSON.stringify(base.transmissionId)},"r":${JSON.stringify(base.rcptTo)},"n":${JSON.stringify(base.namespace)},"x":${base.expiresAt},`
    + (base.campaignId ? `"g":${JSON.stringify(base.campaignId)},` : '');
  prefix += ' '.repeat((3 - (Buffer.byteLength(prefix) % 3)) % 3);
  const signedPrefix = `${key.id}.${Buffer.from(prefix).toString('base64url')}`;
  return (kind, target) => {
    const signed = signedPrefix + Buffer.from(`"k":"${KINDS[kind]}"${kind === 'click' ? `,"u":${JSON.stringify(target)}` : ''}}`).toString('base64url');
    return `${signed}.${mac(key, signed).toString('base64url')}`;
  };
}

/** The claims of a token that verifies with a key of the ring and has not expired. */
export function verifyToken(ring: TrackingKeyRing, token: string, now = Date.now()): Verified {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) return { ok: false, reason: 'malformed' };
  const [keyId, payload, signature] = parts as [string, string, string];
  const key = ring.keys.get(keyId);
  if (!key) return { ok: false, reason: 'unknown_key' };
  const expected = mac(key, `${keyId}.${payload}`);
  const given = Buffer.from(signature, 'base64url');
  // Base64's last character carries bits that decode to nothing: only the one canonical spelling counts, so no altered token passes.
  if (given.length !== expected.length || !timingSafeEqual(given, expected) || given.toString('base64url') !== signature) return { ok: false, reason: 'bad_signature' };
  let compact: { k?: unknown; t?: unknown; r?: unknown; n?: unknown; x?: unknown; u?: unknown; g?: unknown };
  try {
    compact = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof compact;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const kind = typeof compact.k === 'string' ? KIND_OF.get(compact.k) : undefined;
  const strings = [compact.t, compact.r, compact.n].every((v) => typeof v === 'string');
  if (!kind || !strings || typeof compact.x !== 'number' || (kind === 'click' && typeof compact.u !== 'string')) return { ok: false, reason: 'malformed' };
  if (compact.x * 1000 <= now) return { ok: false, reason: 'expired' };
  return {
    ok: true,
    claims: {
      kind, transmissionId: compact.t as string, rcptTo: compact.r as string, namespace: compact.n as string,
      expiresAt: compact.x, ...(kind === 'click' ? { target: compact.u as string } : {}),
      ...(typeof compact.g === 'string' ? { campaignId: compact.g } : {}),
    },
  };
}
