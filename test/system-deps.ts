// The Debian packages the tests and benchmarks drive for real. Installed when missing and
// running as root (CI, fresh machines); otherwise the message says what to install.
import { execFileSync, spawnSync } from 'node:child_process';

const NEEDED: Record<string, string> = {
  swaks: 'swaks',
  openssl: 'openssl',
  java: 'openjdk-17-jre-headless',
  mvn: 'maven',
};

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

export function ensureSystemDeps(extra: Record<string, string> = {}): void {
  const wanted = { ...NEEDED, ...extra };
  const missing = Object.entries(wanted).filter(([command]) => !has(command)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`missing tools; install them with: sudo apt-get install -y ${missing.join(' ')}`);
  }
  process.stderr.write(`installing ${missing.join(', ')} from Debian's packages\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
}
