// OpenDKIM as Postfix's signing milter, so that the Postfix runs of the benchmark sign every
// message as mtrelay does: the same RSA-2048 key and selector, relaxed/relaxed, rsa-sha256.
// A private instance (its own config, key, socket and pid file under .cache); the system's
// /etc/opendkim.conf is not read.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { canConnect, freePort } from '../kafka/broker.ts';

export class OpenDkimInstance {
  readonly port: number;
  readonly #dir: string;
  readonly #child: ChildProcess;

  private constructor(dir: string, port: number, child: ChildProcess) {
    this.#dir = dir;
    this.port = port;
    this.#child = child;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** Postfix's main.cf lines that send every message through this milter (and tempfail if it is away). */
  get postfixLines(): string[] {
    return [`smtpd_milters = inet:127.0.0.1:${this.port}`, 'non_smtpd_milters = $smtpd_milters', 'milter_default_action = tempfail', 'milter_protocol = 6'];
  }

  static async start(dir: string, signing: { domain: string; selector: string; privateKeyPem: string }): Promise<OpenDkimInstance> {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const keyFile = path.join(dir, 'dkim.key');
    writeFileSync(keyFile, signing.privateKeyPem, { mode: 0o600 });
    const port = await freePort();
    const config = path.join(dir, 'opendkim.conf');
    writeFileSync(config, [
      'Syslog no', 'Background no', 'Mode s', 'UMask 007',
      `Domain ${signing.domain}`, `Selector ${signing.selector}`, `KeyFile ${keyFile}`,
      'Canonicalization relaxed/relaxed', 'SignatureAlgorithm rsa-sha256',
      // Loopback clients are "internal": their mail is signed, as Postfix's mynetworks trusts them.
      'InternalHosts 127.0.0.1', `Socket inet:${port}@127.0.0.1`, `PidFile ${path.join(dir, 'opendkim.pid')}`, '',
    ].join('\n'));
    chmodSync(dir, 0o755);
    const child = spawn('opendkim', ['-f', '-x', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const deadline = Date.now() + 15_000;
    while (!(await canConnect(port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`opendkim did not start: ${stderr.trim() || `exit ${child.exitCode}`}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return new OpenDkimInstance(dir, port, child);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null) {
      const exited = new Promise((r) => this.#child.once('exit', r));
      this.#child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
