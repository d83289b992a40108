// `npm test`: runs test files with node:test, three at a time, each in its own process under its
// own time limit, after starting only what the chosen files need (see test/runner/test-files.ts):
// a real Kafka broker, the Kubernetes tools, the system tools. Everything started is stopped,
// whatever happens.
//
//   npm test                      type check, then every test file
//   npm test -- FILE…             only these files (no type check)
//   npm run test:unit             only the files that need nothing (no broker, API server or child process)
//   npm test -- --randomize       run the tests of each file in random order (finds order dependence)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureK8sTools, ensureNodeTools } from './k8s/build-tools.ts';
import { ensureChartTools } from './chart/tools.ts';
import { KafkaBroker, repoRoot } from './kafka/broker.ts';
import { DirectiveError, NEEDS, findTestFiles, isUnit, readTestFile, type TestFile } from './runner/test-files.ts';
import { ensureSystemTools, type SystemToolName } from './system-deps.ts';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    unit: { type: 'boolean', default: false },
    randomize: { type: 'boolean', default: false },
    // Most files wait on timeouts, brokers and sockets rather than compute: three at a time keep
    // two cores busy (measured: 170 s against 225 s with two) without making timing tests flaky.
    concurrency: { type: 'string', default: '3' },
  },
});

interface FileResult {
  file: string;
  ok: boolean;
  seconds: number;
  tests: number;
  failed: number;
  note?: string;
  /** The start of the spec reporter's "failing tests" section: what a CI log's tail must show. */
  failures?: string;
}

function select(): TestFile[] {
  try {
    const files = positionals.length ? positionals.map((f) => path.relative(repoRoot, path.resolve(f)).split(path.sep).join('/')) : findTestFiles(repoRoot);
    const chosen = files.map((f) => readTestFile(repoRoot, f));
    return flags.unit ? chosen.filter(isUnit) : chosen;
  } catch (error) {
    if (error instanceof DirectiveError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

function typecheck(): Promise<void> {
  return new Promise((resolve, reject) => {
    const tsc = spawn(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', repoRoot], { stdio: 'inherit' });
    tsc.on('exit', (code) => (code === 0 ? resolve() : reject(new Error('type check failed'))));
  });
}

/** The counts node:test's spec reporter prints at its end. */
function counts(output: string): { tests: number; failed: number } {
  const read = (name: string) => Number(new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(output)?.[1] ?? 0);
  return { tests: read('tests'), failed: read('fail') + read('cancelled') };
}

function runFile(test: TestFile, env: NodeJS.ProcessEnv): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [
      '--disable-warning=TimeoutNegativeWarning', '--disable-warning=ExperimentalWarning',
      '--test', '--test-reporter=spec', `--test-timeout=${test.limitMs}`, ...(flags.randomize ? ['--test-randomize'] : []), test.file,
    ], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    // The whole file, not only each test, is bounded: a hung `after` hook cannot hold CI.
    let note: string | undefined;
    const limit = setTimeout(() => {
      note = `stopped: over its time limit of ${test.limitMs / 1000} s`;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, test.limitMs + 15_000);
    child.on('close', (code) => {
      clearTimeout(limit);
      const seconds = (Date.now() - started) / 1000;
      const { tests, failed } = counts(output);
      const ok = code === 0 && !note && tests > 0;
      const result: FileResult = { file: test.file, ok, seconds, tests, failed, ...(note ? { note } : tests === 0 ? { note: 'ran no test' } : {}) };
      if (!ok) result.failures = failureExcerpt(output);
      process.stdout.write(`\n── ${test.file} · ${ok ? 'pass' : 'FAIL'} · ${tests} tests · ${seconds.toFixed(1)} s${result.note ? ` · ${result.note}` : ''}\n${output}`);
      resolve(result);
    });
  });
}

/** The first lines of each failing test's error (stack frames left out), or the output's last lines when there is no such section. */
function failureExcerpt(output: string): string {
  const section = output.split('\n✖ failing tests:\n')[1];
  const lines = section ? section.split('\n').filter((l) => !/^\s+at /.test(l)) : output.split('\n').slice(-15);
  return lines.filter((l) => l.trim()).slice(0, 24).map((l) => `    ${l}`).join('\n');
}

async function runAll(tests: TestFile[], env: NodeJS.ProcessEnv): Promise<FileResult[]> {
  const queue = [...tests].sort((a, b) => b.limitMs - a.limitMs); // long files first, so the run ends together
  const results: FileResult[] = [];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) results.push(await runFile(next, env));
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(flags.concurrency)) }, worker));
  return results;
}

function summary(results: FileResult[], seconds: number): boolean {
  const failed = results.filter((r) => !r.ok);
  const tests = results.reduce((n, r) => n + r.tests, 0);
  const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 8);
  process.stdout.write([
    '',
    `${results.length} files, ${tests} tests, ${failed.length} files failing, ${seconds.toFixed(1)} s`,
    `slowest: ${slowest.map((r) => `${r.file} ${r.seconds.toFixed(1)} s`).join(', ')}`,
    ...failed.map((r) => `FAIL ${r.file}: ${r.failed} failing${r.note ? ` (${r.note})` : ''}${r.failures ? `\n${r.failures}` : ''}`),
    '',
  ].join('\n'));
  return failed.length === 0 && results.length > 0;
}

const started = Date.now();
const tests = select();
if (tests.length === 0) {
  process.stderr.write('no test files chosen\n');
  process.exit(2);
}
const needs = new Set(tests.flatMap((t) => t.needs));
ensureSystemTools([...needs].flatMap((need): SystemToolName[] => [...NEEDS[need].tools]));
const env: NodeJS.ProcessEnv = { ...process.env };
const cleanups: (() => Promise<void>)[] = [];
let exitCode = 1;
try {
  if (!positionals.length && !flags.unit) await typecheck();
  if (needs.has('k8s')) {
    // The operator's tests start their own API servers from these; built once here.
    const since = Date.now();
    ensureK8sTools();
    process.stderr.write(`Kubernetes tools ready in ${((Date.now() - since) / 1000).toFixed(1)} s\n`);
  }
  if (needs.has('cluster')) {
    const since = Date.now();
    ensureK8sTools();
    ensureNodeTools();
    process.stderr.write(`cluster tools ready in ${((Date.now() - since) / 1000).toFixed(1)} s\n`);
  }
  if (needs.has('chart')) {
    const since = Date.now();
    ensureChartTools();
    process.stderr.write(`chart tools ready in ${((Date.now() - since) / 1000).toFixed(1)} s\n`);
  }
  if (needs.has('kafka')) {
    const runs = path.join(repoRoot, '.cache', 'test-runs');
    mkdirSync(runs, { recursive: true });
    const dir = mkdtempSync(path.join(runs, 'kafka-'));
    const broker = new KafkaBroker({ dir });
    cleanups.push(async () => {
      await broker.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const since = Date.now();
    await broker.start();
    env.MTRELAY_TEST_KAFKA = broker.bootstrap;
    process.stderr.write(`Kafka broker up at ${broker.bootstrap} in ${((Date.now() - since) / 1000).toFixed(1)} s\n`);
  }
  process.once('SIGINT', () => process.stderr.write('interrupted; stopping after the running files\n'));
  exitCode = summary(await runAll(tests, env), (Date.now() - started) / 1000) ? 0 : 1;
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
} finally {
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
}
process.exit(exitCode);
