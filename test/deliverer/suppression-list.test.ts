// The suppression list's two kinds of entry: for all mail (a hard bounce, a person), and for
// mail not marked transactional (a complaint), which has a key of its own so that neither
// replaces the other in the compacted topic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SuppressionList, suppressionKey, type SuppressionEntry } from '../../deliverer/suppression-list.ts';

const entry = (extra: Partial<SuppressionEntry>): SuppressionEntry => ({ namespace: 'acme', address: 'ann@example.net', reason: 'r', source: 'bounce', created: '2026-11-30T00:00:00Z', ...extra });

test('an entry for all mail holds back transactional and other mail; a complaint only mail not marked transactional', () => {
  const list = new SuppressionList();
  list.add(entry({ source: 'complaint', type: 'non_transactional' }));
  assert.equal(list.has('acme', 'Ann@Example.net'), true);
  assert.equal(list.has('acme', 'ann@example.net', true), false);
  assert.equal(list.has('other', 'ann@example.net'), false, 'per account');
  list.add(entry({}));
  assert.equal(list.has('acme', 'ann@example.net', true), true);
  list.remove(suppressionKey('acme', 'ann@example.net'));
  assert.equal(list.has('acme', 'ann@example.net', true), false, 'the complaint\'s entry alone is left');
  assert.equal(list.has('acme', 'ann@example.net'), true);
});

test('keys: the complaint\'s apart from the all-mail one, addresses in lower case', () => {
  assert.equal(suppressionKey('acme', 'Ann@Example.NET'), 'acme/ann@example.net');
  assert.equal(suppressionKey('acme', 'ann@example.net', 'non_transactional'), 'acme/ann@example.net#non_transactional');
});

test("an account's entries come in code-unit order, punctuation included, as the API's cursors compare them", () => {
  const list = new SuppressionList();
  for (const address of ['ab@x.test', 'a.b@x.test', 'a-b@x.test', 'a_b@x.test', 'a0@x.test']) list.add(entry({ address }));
  list.add(entry({ address: 'a.b@x.test', type: 'non_transactional' }));
  const keys = list.entries('acme').map((e) => `${e.address}\u0000${e.type ?? ''}`);
  assert.deepEqual(keys, [...keys].sort());
  assert.equal(keys.length, 6);
});
