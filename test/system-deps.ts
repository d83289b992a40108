// The Debian packages the tests and benchmarks drive for real. Each tool is checked for
// what the tests need of it, not only for its command: swaks must speak TLS, which it can
// only with Net::SSLeay (a package apt leaves out with --no-install-recommends). Missing
// tools are installed when running as root (CI, fresh machines); otherwise the message
// says what to install.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

interface SystemTool {
  /** Debian packages that make it work. */
  packages: string[];
  /** True when the tool can do what the tests need. */
  works: () => boolean;
  /** What `works` checks, for the error message. */
  check: string;
}

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Debian's Chromium binary itself: /usr/bin/chromium is a shell wrapper that adds flags of its own. */
export const CHROMIUM_BINARY = '/usr/lib/chromium/chromium';

/**
 * Keeps Chromium to loopback. Even with background networking and component updates off, it
 * calls Google's time, update, account and dictionary servers on its own; this sends every
 * host but loopback's to a closed port (9, one Chromium refuses to load pages from), so those
 * calls, and pages outside, fail with ERR_CONNECTION_REFUSED without a DNS query. Not
 * `MAP * ~NOTFOUND`: a page failing on a name error makes Chromium query public DNS servers
 * (8.8.8.8) itself to diagnose it.
 */
export const CHROMIUM_LOOPBACK_ONLY = '--host-resolver-rules=MAP * 127.0.0.1:9, EXCLUDE 127.0.0.1, EXCLUDE localhost';

/** Chromium renders a page headless: it prints the DOM its script built. */
function chromiumRenders(): boolean {
  if (!existsSync(CHROMIUM_BINARY)) return false;
  // A throwaway profile, so the check leaves nothing in ~/.config; as root it needs --no-sandbox.
  const profile = mkdtempSync(path.join(tmpdir(), 'chromium-check-'));
  try {
    const page = 'data:text/html,<p id=x></p><script>document.getElementById("x").textContent = 6 * 7 + " rendered"</script>';
    const run = spawnSync(CHROMIUM_BINARY, ['--headless', '--no-sandbox', CHROMIUM_LOOPBACK_ONLY, `--user-data-dir=${profile}`, '--dump-dom', page],
      { encoding: 'utf8', timeout: 60_000 });
    return run.status === 0 && run.stdout.includes('<p id="x">42 rendered</p>');
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

function prints(command: string, args: string[], expected: string): boolean {
  const run = spawnSync(command, args, { encoding: 'utf8' });
  return run.status === 0 && `${run.stdout}${run.stderr}`.includes(expected);
}

export const SYSTEM_TOOLS = {
  swaks: { packages: ['swaks', 'libnet-ssleay-perl'], check: '`swaks --support` reports "TLS supported"', works: () => has('swaks') && prints('swaks', ['--support'], '=== TLS supported') },
  openssl: { packages: ['openssl'], check: 'openssl is on the PATH', works: () => has('openssl') },
  // The TLS scanner the security tests run against the relay's ports (protocols, ciphers, renegotiation).
  testssl: { packages: ['testssl.sh'], check: '`testssl --version` runs', works: () => has('testssl') && prints('testssl', ['--version'], 'testssl') },
  java: { packages: ['openjdk-17-jre-headless'], check: 'java is on the PATH', works: () => has('java') },
  maven: { packages: ['maven'], check: 'mvn is on the PATH', works: () => has('mvn') },
  // An independent DKIM verifier (dkimpy), so signatures are not checked by the library that made them.
  dkimpy: { packages: ['python3', 'python3-dkim', 'python3-dnspython'], check: '/usr/bin/python3 imports dkim and dns.resolver',
    works: () => spawnSync('/usr/bin/python3', ['-c', 'import dkim, dns.resolver'], { stdio: 'ignore' }).status === 0 },
  // buildah and podman build and run the image without a Docker engine; runc, as crun refuses cgroup v1 hybrid mode here.
  containers: { packages: ['buildah', 'podman', 'runc', 'netavark', 'aardvark-dns', 'containernetworking-plugins', 'uidmap'],
    check: 'buildah, podman and runc are on the PATH', works: () => has('buildah') && has('podman') && has('runc') },
  // What the one-node cluster's kubelet and kube-proxy run with: runc under containerd, the CNI
  // plugins (bridge, portmap, host-local, loopback), iptables for Services, ip for the bridge.
  node: { packages: ['runc', 'containernetworking-plugins', 'iptables', 'iproute2', 'conntrack'],
    check: 'runc, iptables, ip and /usr/lib/cni/bridge exist',
    works: () => has('runc') && has('iptables') && has('ip') && existsSync('/usr/lib/cni/bridge') && existsSync('/usr/lib/cni/portmap') },
  postfix: { packages: ['postfix'], check: 'postfix is installed (the benchmarks\' peer)', works: () => has('postfix') || has('/usr/sbin/postfix') },
  // The peer's DKIM signer: Postfix signs through it in the end-to-end benchmark, as mtrelay signs itself.
  opendkim: { packages: ['opendkim'], check: 'opendkim is installed', works: () => has('opendkim') || has('/usr/sbin/opendkim') },
  // A real browser for the tracker's open and click tests (driven by playwright-core): its
  // script must run, so the check asks it to render a page. fonts-liberation, which apt leaves
  // out with --no-install-recommends, is there so pages have text to lay out.
  chromium: { packages: ['chromium', 'fonts-liberation'], check: `${CHROMIUM_BINARY} --headless --dump-dom prints a page its script rendered`, works: chromiumRenders },
  // The cluster's events store: tests start private servers with initdb (as the postgres user when root).
  postgres: { packages: ['postgresql-15'], check: '/usr/lib/postgresql/15/bin/initdb and the postgres user exist',
    works: () => existsSync('/usr/lib/postgresql/15/bin/initdb') && spawnSync('id', ['-u', 'postgres'], { stdio: 'ignore' }).status === 0 },
} satisfies Record<string, SystemTool>;

export type SystemToolName = keyof typeof SYSTEM_TOOLS;

/** Makes sure each named tool works, installing its packages when missing (as root). */
export function ensureSystemTools(names: Iterable<SystemToolName>): void {
  const broken = [...new Set(names)].filter((name) => !SYSTEM_TOOLS[name].works());
  if (broken.length === 0) return;
  const packages = [...new Set(broken.flatMap((name) => SYSTEM_TOOLS[name].packages))];
  if (process.getuid?.() !== 0) {
    throw new Error(`missing or incomplete tools (${broken.join(', ')}); install them with: sudo apt-get install -y ${packages.join(' ')}`);
  }
  process.stderr.write(`installing ${packages.join(', ')} from Debian's packages (for ${broken.join(', ')})\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  const still = broken.filter((name) => !SYSTEM_TOOLS[name].works());
  if (still.length) throw new Error(`installed, but still not working: ${still.map((n) => `${n} (${SYSTEM_TOOLS[n].check})`).join(', ')}`);
}
