// Tracking tokens: they carry their claims and verify only with the key that signed them, unaltered
// and unexpired; keys rotate without breaking tokens already sent; nothing else gets through.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { MAX_TOKEN_LENGTH, keyRing, recipientSigner, signToken, verifyToken, type TrackingClaims } from '../../shared/tracking/tokens.ts';

const k1 = { id: 'k1', secret: randomBytes(32) };
const k2 = { id: 'k2', secret: randomBytes(32) };
const now = Date.UTC(2026, 10, 29);
const click: TrackingClaims = {
  kind: 'click', transmissionId: '7309411234567890123', rcptTo: 'ana.lópez@example.com', namespace: 'shop',
  target: 'https://shop.example.com/sale?id=1&ref=mail#top', expiresAt: now / 1000 + 86_400,
};

test('a token carries its claims and verifies with the key that signed it', () => {
  const ring = keyRing([k1]);
  for (const claims of [click, { ...click, kind: 'open' as const, target: undefined }, { ...click, kind: 'initial_open' as const, target: undefined }, { ...click, campaignId: 'spring-sale' }]) {
    const token = signToken(ring, claims);
    assert.match(token, /^k1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/, 'URL-safe as it stands');
    const { target, ...rest } = claims;
    assert.deepEqual(verifyToken(ring, token, now), { ok: true, claims: { ...rest, ...(claims.kind === 'click' ? { target } : {}) } });
  }
});

test('a changed claim, another key, a forged key id or an expired token does not verify', () => {
  const ring = keyRing([k1]);
  const token = signToken(ring, click);
  const [id, payload, mac] = token.split('.') as [string, string, string];
  const otherTarget = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), u: 'https://evil.example.net/' })).toString('base64url');
  assert.deepEqual(verifyToken(ring, `${id}.${otherTarget}.${mac}`, now), { ok: false, reason: 'bad_signature' });
  assert.deepEqual(verifyToken(ring, `${id}.${payload}.${mac.slice(0, -2)}AA`, now), { ok: false, reason: 'bad_signature' });
  // The MAC's last base64 character has two bits that decode to nothing: another spelling of the same bytes is refused too.
  const respelled = mac.slice(0, -1) + 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(mac.at(-1)!) ^ 1)];
  assert.deepEqual(Buffer.from(respelled, 'base64url'), Buffer.from(mac, 'base64url'), 'the same bytes');
  assert.deepEqual(verifyToken(ring, `${id}.${payload}.${respelled}`, now), { ok: false, reason: 'bad_signature' });
  assert.deepEqual(verifyToken(keyRing([{ id: 'k1', secret: randomBytes(32) }]), token, now), { ok: false, reason: 'bad_signature' });
  assert.deepEqual(verifyToken(ring, `k9.${payload}.${mac}`, now), { ok: false, reason: 'unknown_key' });
  assert.deepEqual(verifyToken(ring, token, click.expiresAt * 1000), { ok: false, reason: 'expired' });
  assert.equal(verifyToken(ring, token, click.expiresAt * 1000 - 1).ok, true);
});

test('keys rotate: tokens of a key still held verify; once it is dropped they do not', () => {
  const old = signToken(keyRing([k1]), click);
  const rotated = keyRing([k2, k1]);
  const fresh = signToken(rotated, click);
  assert.ok(fresh.startsWith('k2.'), 'new tokens are signed with the newest key');
  assert.equal(verifyToken(rotated, old, now).ok, true);
  assert.equal(verifyToken(rotated, fresh, now).ok, true);
  assert.deepEqual(verifyToken(keyRing([k2]), old, now), { ok: false, reason: 'unknown_key' });
});

test('malformed tokens are refused before any work: shape, length, encoding, claims', () => {
  const ring = keyRing([k1]);
  const sign = (claims: object) => {
    const signed = `k1.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    // Signed with the right key, so only the claims' shape can refuse it.
    return `${signed}.${createHmac('sha256', k1.secret).update(signed).digest('base64url')}`;
  };
  for (const token of ['', 'a', 'a.b', 'a.b.c.d', 'k1.$$$.abc', `k1.${'A'.repeat(MAX_TOKEN_LENGTH)}.x`, 'k1..x']) {
    assert.deepEqual(verifyToken(ring, token, now), { ok: false, reason: 'malformed' }, JSON.stringify(token.slice(0, 40)));
  }
  for (const claims of [{ k: 'z', t: 't', r: 'r', n: 'n', x: 2e9 }, { k: 'c', t: 't', r: 'r', n: 'n', x: 2e9 }, { k: 'o', t: 1, r: 'r', n: 'n', x: 2e9 }, { k: 'o', t: 't', r: 'r', n: 'n', x: '2e9' }]) {
    assert.deepEqual(verifyToken(ring, sign(claims), now), { ok: false, reason: 'malformed' }, JSON.stringify(claims));
  }
  assert.deepEqual(verifyToken(ring, `k1.${Buffer.from('not json').toString('base64url')}.${sign({}).split('.')[2]}`, now).ok, false);
});

test('only http and https links are tracked; key ids and secrets are checked when the ring is made', () => {
  const ring = keyRing([k1]);
  for (const target of ['mailto:a@example.com', 'tel:+123', 'javascript:alert(1)', '#top', undefined]) {
    assert.throws(() => signToken(ring, { ...click, target }), /only http and https links are tracked/);
  }
  assert.throws(() => keyRing([]), /at least one key/);
  assert.throws(() => keyRing([{ id: 'a.b', secret: randomBytes(32) }]), /not 1 to 16 URL-safe characters/);
  assert.throws(() => keyRing([{ id: 'short', secret: randomBytes(16) }]), /shorter than 32 bytes/);
});

test('a recipient signer makes tokens that verify as signToken\'s do, with the same claims, whatever the prefix length', () => {
  const ring = keyRing([k1, { id: 'k0', secret: randomBytes(80) }]);
  for (const rcptTo of ['a@x.test', 'ab@x.test', 'abc@x.test', 'jörg@bücher.example']) {
    for (const campaignId of [undefined, 'spring', 'sprin']) {
      const base = { transmissionId: '7301982', rcptTo, namespace: 'acme', expiresAt: Math.floor(now / 1000) + 3600, ...(campaignId ? { campaignId } : {}) };
      const sign = recipientSigner(ring, base);
      for (const [kind, target] of [['click', 'https://shop.example/a?b=1&c="2"'], ['open', undefined], ['initial_open', undefined]] as const) {
        const token = sign(kind, target);
        assert.match(token, /^k1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
        assert.deepEqual(verifyToken(ring, token, now), { ok: true, claims: { ...base, kind, ...(target ? { target } : {}) } });
      }
    }
  }
  // A long secret is hashed first, as HMAC does: tokens of a key over 64 bytes verify too.
  const long = keyRing([{ id: 'kl', secret: randomBytes(100) }]);
  assert.equal(verifyToken(long, recipientSigner(long, { transmissionId: '1', rcptTo: 'a@x.test', namespace: 'n', expiresAt: Math.floor(now / 1000) + 60 })('open'), now).ok, true);
});
