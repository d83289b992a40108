// `npm run k8s:start` / `k8s:stop`: start the development API server, print a kubeconfig that
// kubectl can use at once (CRDs applied), and stop it again.
// @needs k8s processes
// @limit 45s
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../kafka/broker.ts';
import { ensureK8sTools } from '../k8s/build-tools.ts';

test('k8s:start prints a working kubeconfig, a second start reuses the server, k8s:stop stops it', () => {
  const dir = mkdtempSync(path.join(repoRoot, '.cache', 'test-runs', 'k8s-dev-'));
  const env = { ...process.env, MTRELAY_K8S_DEV_DIR: dir };
  const cli = (command: string) => execFileSync(process.execPath, [path.join(repoRoot, 'test/k8s/cli.ts'), command], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  try {
    const kubeconfig = cli('start').trim();
    assert.equal(kubeconfig, path.join(dir, 'kubeconfig'));
    const kubectl = (args: string[]) => execFileSync(ensureK8sTools().kubectl, ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8' });
    assert.match(kubectl(['get', 'crd', '-o', 'name']), /sendingdomains\.mtrelay\.dev/);
    assert.equal(cli('start').trim(), kubeconfig);
    cli('stop');
    assert.throws(() => kubectl(['get', 'crd', '--request-timeout', '3s']));
  } finally {
    try { cli('stop'); } catch { /* already stopped */ }
    rmSync(dir, { recursive: true, force: true });
  }
});
