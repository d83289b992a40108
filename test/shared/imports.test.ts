// What production code may import: every package used outside test/ is a dependency (an image
// installs nothing else), deep imports into a package's internals stand only in the one file
// that isolates them, and a pod reading the operator's Secrets never loads the compiler.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../kafka/broker.ts';

const PRODUCTION = ['cli.ts', 'relay', 'deliverer', 'standalone', 'operator', 'tracker', 'dispatcher', 'inbound', 'api', 'shared'];

/** The only deep imports allowed, each in the one file that isolates it (and a test that guards it). */
const ISOLATED: Record<string, string[]> = {
  'shared/mail/nodemailer-internals.ts': ['nodemailer/lib/addressparser', 'nodemailer/lib/mime-node', 'nodemailer/lib/smtp-connection', 'nodemailer/lib/smtp-connection/data-stream'],
  'relay/smtp-server-patches.ts': ['smtp-server/lib/smtp-connection.js', 'smtp-server/lib/smtp-stream.js'],
  // mailauth's MTA-STS helpers are documented to be imported from here (its README); the TXT id and policy parser are used.
  'deliverer/transport-security/mta-sts.ts': ['mailauth/lib/mta-sts.js'],
  // crc-32's second public module (CRC-32C), and the kafkajs internals the file patches.
  'shared/kafka/kafkajs-patches.ts': ['crc-32/crc32c.js', 'kafkajs/src/protocol/encoder.js', 'kafkajs/src/protocol/message/compression/index.js',
    'kafkajs/src/protocol/recordBatch/v0/index.js', 'kafkajs/src/utils/long.js'],
};

function productionFiles(): string[] {
  return PRODUCTION.flatMap((entry) => (entry.endsWith('.ts') ? [entry]
    : readdirSync(path.join(repoRoot, entry), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => `${entry}/${f}`)));
}

interface ImportRef {
  specifier: string;
  /** Erased at runtime (`import type …`). */
  typeOnly: boolean;
  dynamic: boolean;
}

function importsOf(file: string): ImportRef[] {
  const source = readFileSync(path.join(repoRoot, file), 'utf8');
  const refs: ImportRef[] = [];
  for (const m of source.matchAll(/^(?:import|export)(\s+type)?\s[^'"]*?from\s+'([^']+)'|^import\s+'([^']+)'/gm)) {
    refs.push({ specifier: m[2] ?? m[3]!, typeOnly: Boolean(m[1]), dynamic: false });
  }
  for (const m of source.matchAll(/\bimport\('([^']+)'\)/g)) refs.push({ specifier: m[1]!, typeOnly: false, dynamic: true });
  return refs;
}

const isRelative = (s: string) => s.startsWith('.');
const isBuiltin = (s: string) => s.startsWith('node:') || builtinModules.includes(s);
const packageOf = (s: string) => s.split('/').slice(0, s.startsWith('@') ? 2 : 1).join('/');

test('every package production code imports is a dependency, not a devDependency', () => {
  const { dependencies } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const missing = new Set<string>();
  let seen = 0;
  for (const file of productionFiles()) {
    for (const { specifier, typeOnly } of importsOf(file)) {
      if (isRelative(specifier) || isBuiltin(specifier) || typeOnly) continue;
      seen++;
      if (!(packageOf(specifier) in dependencies)) missing.add(`${file}: ${specifier}`);
    }
  }
  assert.ok(seen > 20, `only ${seen} package imports found; the pattern no longer matches the code`);
  assert.deepEqual([...missing], []);
});

test('deep imports into packages stand only in the files that isolate them', () => {
  const deep: string[] = [];
  for (const file of productionFiles()) {
    for (const { specifier } of importsOf(file)) {
      if (isRelative(specifier) || isBuiltin(specifier) || specifier === packageOf(specifier)) continue;
      if (!ISOLATED[file]?.includes(specifier)) deep.push(`${file}: ${specifier}`);
    }
  }
  assert.deepEqual(deep, []);
  for (const [file, allowed] of Object.entries(ISOLATED)) {
    assert.deepEqual(importsOf(file).map((r) => r.specifier).filter((s) => allowed.includes(s)).sort(), [...allowed].sort(), `${file} still isolates them`);
  }
});

/** Project files loaded when `entry` is, following static runtime imports only (not `import()`). */
function staticClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const { specifier, typeOnly, dynamic } of importsOf(file)) {
      if (!isRelative(specifier) || typeOnly || dynamic || !specifier.endsWith('.ts')) continue;
      visit(path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier)));
    }
  };
  visit(entry);
  return seen;
}

test('the relay and the deliverer load the compiler and the Kubernetes client only when their config source needs them', () => {
  for (const entry of ['relay/main.ts', 'deliverer/main.ts']) {
    const loaded = staticClosure(entry);
    assert.ok(loaded.has('shared/config/store.ts') && loaded.size > 15, `${entry} closure looks wrong: ${[...loaded].join(', ')}`);
    for (const heavy of ['shared/config/compiler.ts', 'shared/config/folder-source.ts', 'shared/kube/client.ts', 'shared/config/secret-source.ts']) {
      assert.ok(!loaded.has(heavy), `${entry} loads ${heavy} statically`);
    }
  }
  // The CLI loads a role's code only when that role runs.
  const cli = staticClosure('cli.ts');
  for (const main of ['relay/main.ts', 'deliverer/main.ts', 'standalone/main.ts', 'operator/main.ts', 'shared/kube/client.ts']) {
    assert.ok(!cli.has(main), `cli.ts loads ${main} statically`);
  }
  // Hashing a key at AUTH needs neither the compiler nor ajv.
  const server = staticClosure('relay/relay-server.ts');
  assert.ok(server.has('shared/config/hash.ts') && !server.has('shared/config/compiler.ts'));
});
