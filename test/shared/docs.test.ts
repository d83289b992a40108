// The reference docs say what the code has: the reply tables are generated from the reply
// catalogue, every flag and metric is documented, and every file the docs name exists.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { delivererCommand } from '../../deliverer/command.ts';
import { createDelivererMetrics } from '../../deliverer/metrics.ts';
import { operatorCommand } from '../../operator/command.ts';
import { createOperatorMetrics } from '../../operator/metrics.ts';
import { trackerCommand } from '../../tracker/command.ts';
import { dispatcherCommand } from '../../dispatcher/command.ts';
import { createDispatcherMetrics } from '../../dispatcher/metrics.ts';
import { inboundCommand } from '../../inbound/command.ts';
import { createInboundMetrics } from '../../inbound/metrics.ts';
import { apiCommand } from '../../api/command.ts';
import { createApiMetrics } from '../../api/metrics.ts';
import { createTrackerMetrics } from '../../tracker/metrics.ts';
import { relayCommand } from '../../relay/command.ts';
import { createRelayMetrics } from '../../relay/metrics.ts';
import { REPLIES, replyLine } from '../../shared/smtp-replies.ts';
import { standaloneCommand } from '../../standalone/command.ts';
import { GENERATED, regenerate } from '../docs/generated-sections.ts';
import { repoRoot } from '../kafka/broker.ts';

const doc = (name: string) => readFileSync(path.join(repoRoot, 'docs', name), 'utf8');

test('the generated sections of the docs are what the code writes (npm run docs rewrites them)', () => {
  for (const file of Object.keys(GENERATED)) {
    const text = doc(file);
    assert.equal(text, regenerate(file, text), `docs/${file} is out of date: run npm run docs`);
  }
});

test('docs/smtp-replies.md shows every reply by name and full text', () => {
  const replies = doc('smtp-replies.md');
  for (const [name, r] of Object.entries(REPLIES)) {
    assert.ok(replies.includes(`| \`${name}\` | \`${r.code} ${r.enhanced} ${r.text}\` |`), `${name} is not documented as it is written`);
  }
  // A rendered reply is the documented template with its values in.
  assert.equal(replyLine('UNCONFIGURED_SENDING_DOMAIN', { domain: 'example.org' }), '550 5.7.1 Unconfigured Sending Domain <example.org>');
  assert.throws(() => replyLine('SANDBOX_QUOTA', { limit: 5 } as never), /needs a value for \{namespace\}/);
});

test('docs/configuration.md documents every flag of every role', () => {
  const configuration = doc('configuration.md');
  for (const command of [relayCommand(), delivererCommand(), standaloneCommand(), operatorCommand(), trackerCommand(), dispatcherCommand(), inboundCommand(), apiCommand()]) {
    for (const option of command.options) {
      assert.ok(configuration.includes(`\`${option.long}`), `${command.name()} ${option.long} is not documented`);
    }
  }
});

test('docs/operations.md documents every metric of every role', async () => {
  const operations = doc('operations.md');
  const registry = new Registry();
  createRelayMetrics(registry);
  createDelivererMetrics(registry);
  createOperatorMetrics(registry);
  createTrackerMetrics(registry);
  createDispatcherMetrics(registry);
  createInboundMetrics(registry);
  createApiMetrics(registry);
  const names = [...(await registry.getMetricsAsJSON()).map((m) => m.name), 'mtrelay_config_generation', 'mtrelay_config_reload_errors_total'];
  assert.ok(names.length > 20);
  for (const name of names) assert.ok(operations.includes(`\`${name}\``), `${name} is not documented`);
});

/** Markdown files whose text names project files: the README, docs/ and every folder's README. */
function markdownFiles(): string[] {
  const folders = readdirSync(repoRoot, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules');
  return [
    'README.md',
    ...readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
    ...folders.map((f) => `${f.name}/README.md`).filter((f) => existsSync(path.join(repoRoot, f))),
  ];
}

test('every project file and folder the docs and READMEs name exists', () => {
  const named = /(?<![\w./-])((?:relay|deliverer|standalone|operator|tracker|dispatcher|shared|test|crds|charts|examples|docs|bin)\/[\w./-]*[\w/])/g;
  const missing: string[] = [];
  let checked = 0;
  for (const file of markdownFiles()) {
    const text = readFileSync(path.join(repoRoot, file), 'utf8');
    for (const [, ref] of text.matchAll(named)) {
      // Links are relative to the file that holds them; plain names to the repository root.
      const candidates = [path.join(repoRoot, ref!), path.join(repoRoot, path.dirname(file), ref!)];
      checked++;
      if (!candidates.some((c) => existsSync(c))) missing.push(`${file}: ${ref}`);
    }
  }
  assert.ok(checked > 30, `only ${checked} names found; the pattern no longer matches the docs`);
  assert.deepEqual(missing, []);
});

test('every file a folder\'s README lists by its bare name exists in that folder', () => {
  const missing: string[] = [];
  let checked = 0;
  for (const readme of markdownFiles().filter((f) => /^[^/]+\/README\.md$/.test(f))) {
    const folder = path.dirname(readme);
    for (const [, name] of readFileSync(path.join(repoRoot, readme), 'utf8').matchAll(/`([\w.-]+\.(?:ts|ya?ml|json|md|tpl))`/g)) {
      checked++;
      if (!existsSync(path.join(repoRoot, folder, name!))) missing.push(`${readme}: ${name}`);
    }
  }
  assert.ok(checked > 5, `only ${checked} names found`);
  assert.deepEqual(missing, []);
});
