// Building and running the real Dockerfile without a Docker engine or a registry: buildah
// builds, podman runs, both on storage of their own under .cache/ (vfs: no overlay mounts
// needed). The two bases the Dockerfile takes are made locally in the shape of the ones users
// pull: a build base like node:24-bookworm-slim (node and npm under /usr/local, a shell) and a
// runtime base like distroless nodejs24 (node at /nodejs/bin/node, its libraries, CA
// certificates, the nonroot user, nothing else).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../kafka/broker.ts';

const root = path.join(repoRoot, '.cache', 'containers');
const storage = ['--root', path.join(root, 'storage'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs'];
const confFile = path.join(root, 'containers.conf');

export const BUILD_BASE = 'localhost/mtrelay-test/node-build:24';
export const RUNTIME_BASE = 'localhost/mtrelay-test/node-runtime:24';

function env(): NodeJS.ProcessEnv {
  mkdirSync(root, { recursive: true });
  // This machine refuses higher limits than these; the engine's defaults would ask for more.
  writeFileSync(confFile, [
    '[containers]', 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]', '',
    '[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', 'runtime = "runc"', '',
  ].join('\n'));
  return { ...process.env, CONTAINERS_CONF: confFile, BUILDAH_ISOLATION: 'chroot' };
}

export function buildah(args: string[], options: { input?: string } = {}): string {
  return execFileSync('buildah', [...storage, ...args], { env: env(), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['pipe', 'pipe', 'pipe'], ...options }).trim();
}

export function podman(args: string[]): string {
  return execFileSync('podman', [...storage, ...args], { env: env(), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** podman with its output, exit code and all, for commands expected to fail or to be timed. */
export function podmanRun(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync('podman', [...storage, ...args], { env: env(), encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const imageExists = (name: string) => spawnSync('buildah', [...storage, 'inspect', '--type', 'image', name], { env: env(), stdio: 'ignore' }).status === 0;

/** The files of a program and the libraries it links (as ldd says), copied into a root file system. */
function copyWithLibraries(rootfs: string, files: [from: string, to: string][]): void {
  const libraries = new Set<string>();
  for (const [from, to] of files) {
    mkdirSync(path.dirname(path.join(rootfs, to)), { recursive: true });
    copyFileSync(from, path.join(rootfs, to));
    for (const line of execFileSync('ldd', [from], { encoding: 'utf8' }).split('\n')) {
      const library = /=> (\S+)|^\s*(\/\S+)/.exec(line);
      if (library) libraries.add(library[1] ?? library[2]!);
    }
  }
  for (const library of libraries) {
    mkdirSync(path.dirname(path.join(rootfs, library)), { recursive: true });
    copyFileSync(library, path.join(rootfs, library)); // follows the symlink: the file under the link's name
  }
  mkdirSync(path.join(rootfs, 'lib64'), { recursive: true });
  if (!existsSync(path.join(rootfs, 'lib64/ld-linux-x86-64.so.2'))) copyFileSync('/lib64/ld-linux-x86-64.so.2', path.join(rootfs, 'lib64/ld-linux-x86-64.so.2'));
}

function commonFiles(rootfs: string, users: string): void {
  mkdirSync(path.join(rootfs, 'etc/ssl/certs'), { recursive: true });
  copyFileSync('/etc/ssl/certs/ca-certificates.crt', path.join(rootfs, 'etc/ssl/certs/ca-certificates.crt'));
  writeFileSync(path.join(rootfs, 'etc/passwd'), users);
  writeFileSync(path.join(rootfs, 'etc/group'), users.split('\n').filter(Boolean).map((l) => { const [name, , , gid] = l.split(':'); return `${name}:x:${gid}:`; }).join('\n') + '\n');
  mkdirSync(path.join(rootfs, 'tmp'), { recursive: true, mode: 0o1777 });
}

function commitBase(name: string, rootfs: string, config: string[], fingerprint: string): void {
  const container = buildah(['from', 'scratch']);
  try {
    buildah(['copy', container, `${rootfs}/`, '/']);
    buildah(['config', ...config, '--label', `mtrelay.test/fingerprint=${fingerprint}`, container]);
    buildah(['commit', '--quiet', container, name]);
  } finally {
    buildah(['rm', container]);
  }
}

function fingerprintOf(node: string): string {
  const s = statSync(node);
  return createHash('sha256').update(`${node}:${s.size}:${s.mtimeMs}:4`).digest('hex').slice(0, 16);
}

const sameFingerprint = (name: string, fingerprint: string) =>
  imageExists(name) && buildah(['inspect', '--type', 'image', '--format', '{{index .ImageAnnotations "x"}}{{.OCIv1.Config.Labels}}', name]).includes(fingerprint);

/**
 * Runs `work` holding a lock shared by every process of the checkout: test files run side by
 * side, and two of them making the bases at once would write into one root file system.
 */
function withLock(name: string, work: () => void): void {
  const lock = path.join(root, `${name}.lock`);
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock); // atomic: exactly one process succeeds
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock older than the deadline was left by a process that died holding it.
      if (Date.now() > deadline || Date.now() - statSync(lock).mtimeMs > 10 * 60_000) rmSync(lock, { recursive: true, force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
  try {
    work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Makes both local bases unless they exist for this Node.js already. */
export function ensureBases(): void {
  mkdirSync(root, { recursive: true });
  withLock('bases', makeBases);
}

function makeBases(): void {
  const node = process.execPath; // Node.js 24 from the npm package node@24
  const fingerprint = fingerprintOf(node);
  if (!sameFingerprint(BUILD_BASE, fingerprint)) {
    const rootfs = path.join(root, 'rootfs-build');
    rmSync(rootfs, { recursive: true, force: true });
    copyWithLibraries(rootfs, [[node, 'usr/local/bin/node'], ['/bin/dash', 'bin/sh'], ['/usr/bin/env', 'usr/bin/env']]);
    const npm = path.join(execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim(), 'npm');
    cpSync(npm, path.join(rootfs, 'usr/local/lib/node_modules/npm'), { recursive: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/local/bin/npm'));
    commonFiles(rootfs, 'root:x:0:0:root:/root:/bin/sh\n');
    mkdirSync(path.join(rootfs, 'root'), { recursive: true });
    // The machine's CA bundle, which holds whatever CA its registry access needs, as npm's extra CAs.
    commitBase(BUILD_BASE, rootfs, ['--env', 'PATH=/usr/local/bin:/usr/bin:/bin', '--env', 'HOME=/root',
      '--env', 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt', '--workingdir', '/'], fingerprint);
    rmSync(rootfs, { recursive: true, force: true });
  }
  if (!sameFingerprint(RUNTIME_BASE, fingerprint)) {
    const rootfs = path.join(root, 'rootfs-runtime');
    rmSync(rootfs, { recursive: true, force: true });
    copyWithLibraries(rootfs, [[node, 'nodejs/bin/node']]);
    commonFiles(rootfs, 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n');
    mkdirSync(path.join(rootfs, 'home/nonroot'), { recursive: true });
    commitBase(RUNTIME_BASE, rootfs, ['--env', 'PATH=/usr/local/bin:/usr/bin:/bin:/nodejs/bin', '--env', 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt',
      '--user', '65532:65532', '--workingdir', '/home/nonroot', '--entrypoint', '["/nodejs/bin/node"]'], fingerprint);
    rmSync(rootfs, { recursive: true, force: true });
  }
}

/** Builds the project's Dockerfile on the local bases; the host's network and npm cache serve `npm ci`. */
export function buildImage(tag: string): void {
  ensureBases();
  const npmCache = path.join(execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim());
  buildah(['build', '--quiet', '--network', 'host', '--volume', `${npmCache}:/root/.npm`,
    '--build-arg', `BUILD_BASE=${BUILD_BASE}`, '--build-arg', `RUNTIME_BASE=${RUNTIME_BASE}`, '--build-arg', 'REVISION=test',
    '--tag', tag, '--file', path.join(repoRoot, 'Dockerfile'), repoRoot]);
}

/** The image's size as it is stored, uncompressed, in bytes. */
export function imageSize(tag: string): number {
  return Number(podman(['image', 'inspect', '--format', '{{.Size}}', tag]));
}
