// The runner's contract with the test files: directives parse, unknown ones are refused, and
// every file declares what it uses — so the unit tier really needs nothing, and `npm test --
// FILE` starts everything that file needs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../kafka/broker.ts';
import { DEFAULT_LIMIT_MS, DirectiveError, findTestFiles, parseDirectives, readTestFile, type Need } from './test-files.ts';

test('@needs and @limit are read from comment lines; mistakes are refused by name', () => {
  assert.deepEqual(parseDirectives('a.test.ts', '// Why.\n// @needs kafka swaks\n// @limit 90s\nimport x;\n'), { file: 'a.test.ts', needs: ['kafka', 'swaks'], limitMs: 90_000 });
  assert.deepEqual(parseDirectives('b.test.ts', '// Pure logic.\nimport x;\n'), { file: 'b.test.ts', needs: [], limitMs: DEFAULT_LIMIT_MS });
  assert.throws(() => parseDirectives('c.test.ts', '// @needs kafka mysql\n'), (e) => e instanceof DirectiveError && /unknown need "mysql"/.test(e.message));
  assert.throws(() => parseDirectives('d.test.ts', '// @limit 2m\n'), /whole seconds like "90s", not "2m"/);
});

/** What a test's own code (not the shared helpers') uses, and the need that covers it. */
const USES: [RegExp, Need][] = [
  [/\btestKafka\(/, 'kafka'],
  [/\bnew KafkaBroker\(/, 'kafka-own'],
  [/\bstartTestApiServer\(|\bnew KubeApiServer\(/, 'k8s'],
  [/\b(?:MtrelayProcess|RelayProcess|DelivererProcess)\b|\b(?:spawn|spawnSync|execFile|execFileSync|fork)\(/, 'processes'],
  [/\bswaks\(/, 'swaks'],
  [/\bcreateTestCa\(/, 'openssl'],
  [/\bverifyDkim\(/, 'dkimpy'],
  [/\bbuildImage\(|\bpodman\(/, 'image'],
  [/\bensureChartTools\(/, 'chart'],
  [/\bnew PostgresServer\(/, 'postgres'],
];

/** The file and the test modules it imports (suites such as delivery-suite.ts), not test/helpers/. */
function ownCode(file: string, seen = new Set<string>()): string {
  if (seen.has(file)) return '';
  seen.add(file);
  const source = readFileSync(path.join(repoRoot, file), 'utf8');
  let code = source;
  for (const [, specifier] of source.matchAll(/^import [^'"]*'(\.[^']+\.ts)'/gm)) {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier!));
    if (target.startsWith('test/') && !target.startsWith('test/helpers/') && !target.startsWith('test/kafka/') && !target.startsWith('test/k8s/')) code += ownCode(target, seen);
  }
  return code;
}

test('every test file declares what its code uses; files that declare nothing use nothing', () => {
  const undeclared: string[] = [];
  const files = findTestFiles(repoRoot);
  assert.ok(files.length > 25);
  for (const file of files.filter((f) => f !== 'test/runner/test-files.test.ts')) { // its patterns would match themselves
    const { needs } = readTestFile(repoRoot, file);
    const code = ownCode(file);
    for (const [pattern, need] of USES) {
      // k8s starts child processes of its own (etcd, kube-apiserver); processes covers mtrelay's.
      if (pattern.test(code) && !needs.includes(need) && !(need === 'processes' && needs.includes('k8s') && !/Process\b/.test(code))) {
        undeclared.push(`${file}: uses ${need}`);
      }
    }
  }
  assert.deepEqual(undeclared, []);
});
