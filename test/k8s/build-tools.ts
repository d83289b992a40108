// Builds the real Kubernetes control-plane pieces the operator tests run — kube-apiserver,
// kubectl and etcd — from Go modules (test/k8s/go.mod pins them), into an ignored cache
// folder. Go's module and build caches live outside the checkout, so a second build on
// the same machine, even from a fresh clone, takes seconds.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
export const KUBERNETES_VERSION = 'v1.37.2';
export const toolsDir = path.join(repoRoot, '.cache', `k8s-tools-${KUBERNETES_VERSION}`);

// Without these the binaries call themselves v0.0.0-master, which breaks version checks.
const [major, minor] = KUBERNETES_VERSION.slice(1).split('.');
const VERSION_LDFLAGS = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']
  .flatMap((pkg) => [`-X ${pkg}.gitVersion=${KUBERNETES_VERSION}`, `-X ${pkg}.gitMajor=${major}`, `-X ${pkg}.gitMinor=${minor}`, `-X ${pkg}.gitTreeState=clean`])
  .join(' ');

type ToolName = 'kube-apiserver' | 'kubectl' | 'etcd';
const PACKAGES: Record<ToolName, string> = {
  'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
  kubectl: 'k8s.io/kubernetes/cmd/kubectl',
  etcd: './etcd',
};

/** Fails with what to do when Go is missing, instead of a bare ENOENT from the first build. */
function requireGo(): void {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('Go is needed to build kube-apiserver, kubectl and etcd for the operator tests (test/k8s/go.mod names the version); install it from https://go.dev/dl/ or your distribution and run again');
  }
}

/** Paths of the three binaries, building whichever is missing. */
export function ensureK8sTools(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Record<ToolName, string> {
  mkdirSync(toolsDir, { recursive: true });
  const paths = {} as Record<ToolName, string>;
  for (const [name, pkg] of Object.entries(PACKAGES) as [ToolName, string][]) {
    const out = path.join(toolsDir, name);
    paths[name] = out;
    if (existsSync(out)) continue;
    requireGo();
    const started = Date.now();
    log(`building ${name} (${pkg}) from Go modules; the first build takes minutes`);
    execFileSync('go', ['build', '-trimpath', '-ldflags', VERSION_LDFLAGS, '-o', out, pkg], { cwd: here, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, CGO_ENABLED: '0' } });
    log(`built ${name} in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  return paths;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const paths = ensureK8sTools();
  for (const [name, file] of Object.entries(paths)) process.stdout.write(`${name}: ${file}\n`);
}
