// The reference docs list what the code has: every reply, every relay flag, every metric.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { REPLIES } from '../../relay/replies.ts';
import { relayCommand } from '../../relay/command.ts';
import { createRelayMetrics } from '../../relay/metrics.ts';
import { delivererCommand } from '../../deliverer/command.ts';
import { createDelivererMetrics } from '../../deliverer/metrics.ts';
import { standaloneCommand } from '../../standalone/command.ts';
import { operatorCommand } from '../../operator/command.ts';
import { createOperatorMetrics } from '../../operator/metrics.ts';

const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

test('docs/smtp-replies.md lists every reply code the relay chooses', () => {
  const replies = doc('smtp-replies.md');
  for (const [name, spec] of Object.entries(REPLIES)) {
    assert.ok(replies.includes(`\`${spec.code} ${spec.enhanced}`), `${name} (${spec.code} ${spec.enhanced}) is not documented`);
  }
});

test('docs/configuration.md documents every flag of every role', () => {
  const configuration = doc('configuration.md');
  for (const command of [relayCommand(), delivererCommand(), standaloneCommand(), operatorCommand()]) {
    for (const option of command.options) {
      assert.ok(configuration.includes(`\`${option.long}`), `${command.name()} ${option.long} is not documented`);
    }
  }
});

test('docs/operations.md documents every relay, deliverer and operator metric', async () => {
  const operations = doc('operations.md');
  const registry = createRelayMetrics().registry;
  createDelivererMetrics(registry);
  createOperatorMetrics(registry);
  const names = (await registry.getMetricsAsJSON()).map((m) => m.name)
    .filter((n) => /^mtrelay_(relay|config|deliverer|operator)_/.test(n));
  assert.ok(names.length > 5);
  for (const name of names) assert.ok(operations.includes(`\`${name}\``), `${name} is not documented`);
});
