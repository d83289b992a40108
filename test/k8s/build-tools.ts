// Builds the real Kubernetes pieces the tests run from Go modules (test/k8s/go.mod pins them),
// into an ignored cache folder: kube-apiserver, kubectl and etcd for the operator tests, and
// kubelet, kube-scheduler, kube-controller-manager, kube-proxy, containerd and metrics-server
// for the one-node cluster. Go's module and build caches live outside the checkout, so a second build on
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

const CONTROL_PLANE = {
  'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
  kubectl: 'k8s.io/kubernetes/cmd/kubectl',
  etcd: './etcd',
};
const NODE = {
  kubelet: 'k8s.io/kubernetes/cmd/kubelet',
  'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler',
  'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
  'kube-proxy': 'k8s.io/kubernetes/cmd/kube-proxy',
};
/** From their own module (test/k8s/containerd), built without the snapshotters that need cgo. */
const RUNTIME = {
  containerd: 'github.com/containerd/containerd/v2/cmd/containerd',
  'containerd-shim-runc-v2': 'github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2',
  ctr: 'github.com/containerd/containerd/v2/cmd/ctr',
  crictl: 'sigs.k8s.io/cri-tools/cmd/crictl',
};
const RUNTIME_MODULE = path.join(here, 'containerd');
const RUNTIME_TAGS = 'no_btrfs no_devmapper no_zfs no_aufs';
/** The metrics pipeline the HorizontalPodAutoscalers read, from its own module (test/k8s/metrics-server). */
const METRICS = { 'metrics-server': 'sigs.k8s.io/metrics-server/cmd/metrics-server' };
const METRICS_MODULE = path.join(here, 'metrics-server');
type ToolName = keyof typeof CONTROL_PLANE;
type NodeToolName = keyof typeof NODE | keyof typeof RUNTIME | keyof typeof METRICS;

/** Fails with what to do when Go is missing, instead of a bare ENOENT from the first build. */
function requireGo(): void {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('Go is needed to build kube-apiserver, kubectl and etcd for the operator tests (test/k8s/go.mod names the version); install it from https://go.dev/dl/ or your distribution and run again');
  }
}

type Log = (line: string) => void;
const stderr: Log = (l) => process.stderr.write(`${l}\n`);

/** Paths of the control plane's three binaries, building whichever is missing. */
export function ensureK8sTools(log: Log = stderr): Record<ToolName, string> {
  return build(CONTROL_PLANE, log);
}

/** Paths of a node's and the rest of the control plane's binaries, building whichever is missing. */
export function ensureNodeTools(log: Log = stderr): Record<NodeToolName, string> {
  return {
    ...build(NODE, log),
    ...build(RUNTIME, log, { cwd: RUNTIME_MODULE, tags: RUNTIME_TAGS }),
    ...build(METRICS, log, { cwd: METRICS_MODULE, ldflags: '' }),
  };
}

interface BuildOptions { cwd?: string; tags?: string; ldflags?: string }

function build<N extends string>(packages: Record<N, string>, log: Log, { cwd = here, tags = '', ldflags = VERSION_LDFLAGS }: BuildOptions = {}): Record<N, string> {
  mkdirSync(toolsDir, { recursive: true });
  const paths = {} as Record<N, string>;
  for (const [name, pkg] of Object.entries(packages) as [N, string][]) {
    const out = path.join(toolsDir, name);
    paths[name] = out;
    if (existsSync(out)) continue;
    requireGo();
    const started = Date.now();
    log(`building ${name} (${pkg}) from Go modules; the first build takes minutes`);
    execFileSync('go', ['build', '-trimpath', ...(tags ? ['-tags', tags] : []), ...(ldflags ? ['-ldflags', ldflags] : []), '-o', out, pkg], { cwd, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, CGO_ENABLED: '0' } });
    log(`built ${name} in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  return paths;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const paths = { ...ensureK8sTools(), ...(process.argv.includes('--node') ? ensureNodeTools() : {}) };
  for (const [name, file] of Object.entries(paths)) process.stdout.write(`${name}: ${file}\n`);
}
