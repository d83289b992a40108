// Header parsing and line-ending normalization, the pure parts of the DATA checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressDomain, normalizeLineEndings } from '../../relay/message-checks.ts';
import { hasCode } from '../../shared/errors.ts';
import { headerBlockEnd, parseHeaderBlock } from '../../shared/mail/headers.ts';
import { AuthThrottle } from '../../relay/auth-throttle.ts';
import { UsageCounters } from '../../shared/usage/usage-counters.ts';
import { newTransmissionId } from '../../shared/ids.ts';

test('folded header fields are unfolded and names are case-insensitive', () => {
  assert.deepEqual(parseHeaderBlock('From: a@b.test\r\nX-MT-ATTR: {"a":\r\n\t1}\r\nSubject:  hi \r\n'), [
    { name: 'from', value: 'a@b.test' }, { name: 'x-mt-attr', value: '{"a":\t1}' }, { name: 'subject', value: 'hi' },
  ]);
  assert.throws(() => parseHeaderBlock(' folded first\r\n'), (e) => hasCode(e, 'MTR_ERR_HEADER'));
  assert.throws(() => parseHeaderBlock('no colon here\r\n'), /Header line 1 is not a "Name: value" field/);
});

test('the header block ends at the first empty line', () => {
  assert.equal(headerBlockEnd(Buffer.from('A: 1\r\nB: 2\r\n\r\nbody')), 12);
  assert.equal(headerBlockEnd(Buffer.from('\r\nbody')), 0);
  assert.equal(headerBlockEnd(Buffer.from('A: 1\r\n')), -1);
});

test('line endings: CRLF is kept as it is, bare LF and bare CR become CRLF', () => {
  const clean = Buffer.from('a\r\nb\r\n');
  assert.equal(normalizeLineEndings(clean), clean);
  assert.equal(normalizeLineEndings(Buffer.from('a\nb\rc\r\n')).toString(), 'a\r\nb\r\nc\r\n');
  assert.equal(normalizeLineEndings(Buffer.from('\nx')).toString(), '\r\nx');
});

test('address domains are lower-cased and internationalized names become A-labels', () => {
  assert.equal(addressDomain('Someone@Example.COM'), 'example.com');
  assert.equal(addressDomain('x@bücher.example'), 'xn--bcher-kva.example');
  assert.equal(addressDomain('x@example.com.'), 'example.com');
  assert.equal(addressDomain('no-domain@'), undefined);
  assert.equal(addressDomain('nobody'), undefined);
});

test('AUTH failures are slowed after 3 and refused after 10 within the window', () => {
  const throttle = new AuthThrottle({ slowAfter: 3, blockAfter: 10, windowMs: 60_000, delayStepMs: 1000, maxDelayMs: 5000 }, new UsageCounters());
  const t0 = 1_000_000;
  const delays = Array.from({ length: 10 }, (_, i) => throttle.fail('192.0.2.1', t0 + i));
  assert.deepEqual(delays, [0, 0, 0, 1000, 2000, 3000, 4000, 5000, 5000, 5000]);
  // Counted in 1-second buckets (a sixtieth of the window): the failures of [t0, t0 + 1 s) count until t0 + 61 s.
  assert.equal(throttle.blockedFor('192.0.2.1', t0 + 10), 61);
  assert.equal(throttle.blockedFor('192.0.2.2', t0 + 10), 0, 'other addresses are not affected');
  assert.equal(throttle.blockedFor('192.0.2.1', t0 + 60_999), 1);
  assert.equal(throttle.blockedFor('192.0.2.1', t0 + 61_000), 0, 'the block ends with the window and its last bucket');
});

test('transmission ids are decimal, unique and ordered by time', () => {
  const ids = Array.from({ length: 1000 }, (_, i) => newTransmissionId(Date.UTC(2026, 0, 1) + i));
  assert.equal(new Set(ids).size, 1000);
  assert.ok(ids.every((id) => /^\d+$/.test(id)));
  assert.deepEqual([...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)), ids);
});
