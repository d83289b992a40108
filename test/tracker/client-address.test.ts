// The reader's address behind proxies: X-Forwarded-For is believed only from trusted proxies,
// read from the nearest hop back to the first address that is not one of them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientAddress, trustedProxies } from '../../tracker/client-address.ts';

const proxies = trustedProxies(['10.0.0.0/8', '192.0.2.1', 'fd00::/8']);

test('a direct client is its own address, whatever it claims', () => {
  assert.equal(clientAddress('198.51.100.7', '203.0.113.9', proxies), '198.51.100.7');
  assert.equal(clientAddress('198.51.100.7', '203.0.113.9', undefined), '198.51.100.7');
});

test('behind trusted proxies: the first untrusted hop from the right', () => {
  assert.equal(clientAddress('10.1.2.3', '203.0.113.9', proxies), '203.0.113.9');
  assert.equal(clientAddress('::ffff:10.1.2.3', '203.0.113.9, 192.0.2.1', proxies), '203.0.113.9');
  // A forged leftmost entry is not believed: the proxy appended the real one.
  assert.equal(clientAddress('10.1.2.3', '1.1.1.1, 203.0.113.9', proxies), '203.0.113.9');
  assert.equal(clientAddress('fd00::5', '2001:db8::7', proxies), '2001:db8::7');
  // Garbage stops the walk at the last address known good.
  assert.equal(clientAddress('10.1.2.3', 'not-an-ip', proxies), '10.1.2.3');
  assert.equal(clientAddress('10.1.2.3', undefined, proxies), '10.1.2.3');
});

test('a bad proxy list is refused with the entry named', () => {
  assert.throws(() => trustedProxies(['10.0.0.0/8', 'ingress']), /invalid proxy address "ingress"/);
});
