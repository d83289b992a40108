// Fuzzing the deliverer's rewriting of what users send (fan-out headers, DKIM) and the config
// compiler's YAML input; the properties are in mime-and-config-properties.ts, and `npm run fuzz`
// runs them for longer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compilerProperty, fanOutArbitrary, fanOutProperty, manifestArbitrary } from './mime-and-config-properties.ts';

test('every message the relay accepts fans out into well-formed copies without X-MT-ATTR or foreign Bcc, each signed so that mailauth verifies it', async () => {
  let accepted = 0;
  await fc.assert(fc.asyncProperty(fanOutArbitrary, async ([message, to]) => {
    if (await fanOutProperty(message, to)) accepted++;
  }), { numRuns: 300, interruptAfterTimeLimit: 40_000 });
  assert.ok(accepted >= 50, `only ${accepted} generated messages were accepted: the generator no longer reaches fan-out`);
});

test('the config compiler, fed any manifests and any text, reports problems as values and compiles only what its schema accepts', () => {
  fc.assert(fc.property(fc.array(manifestArbitrary, { maxLength: 6 }), compilerProperty), { numRuns: 500 });
});
