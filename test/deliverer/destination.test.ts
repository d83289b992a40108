// The destination label: the big mailbox providers by name, every other domain as `other`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { destinationOf } from '../../deliverer/destination.ts';

test('recipients are grouped by mailbox provider, with a bounded set of values', () => {
  const cases: [string, string][] = [
    ['a@gmail.com', 'gmail'], ['a@GoogleMail.com', 'gmail'],
    ['a@yahoo.com', 'yahoo'], ['a@yahoo.co.uk', 'yahoo'], ['a@aol.com', 'yahoo'], ['a@ymail.com', 'yahoo'],
    ['a@outlook.com', 'microsoft'], ['a@hotmail.co.uk', 'microsoft'], ['a@live.com', 'microsoft'], ['a@msn.com', 'microsoft'],
    ['a@icloud.com', 'apple'], ['a@me.com', 'apple'],
    ['a@example.com', 'other'], ['a@gmail.com.evil.test', 'other'], ['a@notgmail.com', 'other'], ['a@mail.yahoo.com', 'other'],
  ];
  for (const [recipient, destination] of cases) assert.equal(destinationOf(recipient), destination, recipient);
});
