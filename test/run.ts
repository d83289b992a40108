// `npm test`: checks types, starts a real Kafka broker (KRaft) for the whole run, runs every
// test file with node:test, and stops the broker — whatever happens.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { KafkaBroker, repoRoot } from './kafka/broker.ts';
import { ensureSystemDeps } from './system-deps.ts';
import { ensureK8sTools } from './k8s/build-tools.ts';

ensureSystemDeps();

const tsc = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', repoRoot], { stdio: 'inherit' });
if (tsc.status !== 0) {
  process.stderr.write('type check failed\n');
  process.exit(1);
}

// The operator's tests start their own API servers; build kube-apiserver, kubectl and etcd
// once here rather than in two test files at the same time.
const tools = Date.now();
ensureK8sTools();
process.stderr.write(`Kubernetes tools ready in ${((Date.now() - tools) / 1000).toFixed(1)} s\n`);

const runs = path.join(repoRoot, '.cache', 'test-runs');
mkdirSync(runs, { recursive: true });
const dir = mkdtempSync(path.join(runs, 'kafka-'));
const broker = new KafkaBroker({ dir });
const started = Date.now();
await broker.start();
process.stderr.write(`Kafka broker up at ${broker.bootstrap} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

const files = process.argv.slice(2);
const child = spawn(process.execPath, [
  '--disable-warning=TimeoutNegativeWarning', '--test', '--test-concurrency=2', '--test-timeout=300000',
  ...(files.length ? files : ['test/**/*.test.ts']),
], { cwd: repoRoot, stdio: 'inherit', env: { ...process.env, MTRELAY_TEST_KAFKA: broker.bootstrap } });

const stopAll = async (code: number) => {
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
  process.exit(code);
};
process.on('SIGINT', () => child.kill('SIGINT'));
child.on('exit', (code, signal) => void stopAll(code ?? (signal ? 1 : 0)));
