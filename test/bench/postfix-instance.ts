// A private Postfix instance for comparison: its own main.cf/master.cf, queue and data
// folders under .cache, smtpd on a free loopback port, and every accepted message queued to
// disk and then dropped by the discard transport, or (relayPort) relayed over SMTP to a sink
// on loopback, as a relay in front of a mailbox provider would. The system's default instance and
// /etc/postfix are not touched: `postfix -c DIR` run as root needs no
// alternate_config_directories (only the set-gid postdrop/postqueue do).
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { canConnect, freePort } from '../kafka/broker.ts';

export interface PostfixOptions {
  /** Relay every message over SMTP to 127.0.0.1:relayPort instead of discarding it. */
  relayPort?: number;
  /** Offer STARTTLS with this certificate (clients may still send in the clear). */
  tls?: { cert: string; key: string };
  /** More main.cf lines (the OpenDKIM milter). */
  extra?: string[];
  /** Parallel SMTP connections to that relay host (default 20, Postfix's own default). */
  concurrency?: number;
}

/** Where accepted mail goes: the discard transport, or the smtp client to the relay host. */
function transportLines(options: PostfixOptions): string[] {
  if (options.relayPort === undefined) return ['default_transport = discard', 'relay_transport = discard'];
  const concurrency = options.concurrency ?? 20;
  return [
    'default_transport = smtp',
    'relay_transport = smtp',
    // An IP literal in brackets: no MX or A lookup, every domain goes to this one host.
    `relayhost = [127.0.0.1]:${options.relayPort}`,
    // The sink offers no STARTTLS; the deliverer runs with the opportunistic policy, which comes to the same.
    'smtp_tls_security_level = none',
    // Everything goes to one destination: allow it as many connections as the deliverer gets,
    // from the start (no slow start from 5; this sink never fails).
    `default_destination_concurrency_limit = ${concurrency}`,
    `smtp_destination_concurrency_limit = ${concurrency}`,
    `initial_destination_concurrency = ${concurrency}`,
  ];
}

function mainCf(dir: string, options: PostfixOptions): string {
  return [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    // No syslog daemon here: log to a file through postlogd (one more Postfix process to count).
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    'myhostname = bench.localdomain',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    // Clients on loopback may relay without AUTH: there is no SASL backend (Dovecot, Cyrus) here.
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    // Nothing is local: every recipient goes to the default transport, which discards or
    // relays it after the queue manager took it from the disk queue.
    'mydestination =',
    'relay_domains =',
    'local_recipient_maps =',
    'alias_maps =',
    'alias_database =',
    ...transportLines(options),
    // Like the relay (disableReverseLookup), no reverse DNS lookup of the client.
    'smtpd_peername_lookup = no',
    ...(options.tls ? [
      // STARTTLS offered, not required; TLS 1.2 or newer, as the relay. tlsmgr (master.cf) makes
      // the session ticket keys, so clients resume sessions as they do with the relay.
      'smtpd_tls_security_level = may',
      `smtpd_tls_cert_file = ${options.tls.cert}`,
      `smtpd_tls_key_file = ${options.tls.key}`,
      'smtpd_tls_protocols = >=TLSv1.2',
      'smtpd_tls_mandatory_protocols = >=TLSv1.2',
      'smtpd_tls_session_cache_timeout = 3600s',
      'smtpd_tls_loglevel = 0',
    ] : ['smtpd_tls_security_level = none']),
    'biff = no',
    // Messages of any size the benchmark sends (the default limit is about 10 MB).
    'message_size_limit = 0',
    ...(options.extra ?? []),
    '',
  ].join('\n');
}

function masterCf(port: number): string {
  return `# service type private unpriv chroot wakeup maxproc command
127.0.0.1:${port} inet n - n - - smtpd
cleanup   unix  n - n -   0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -   - trivial-rewrite
bounce    unix  - - n -   0 bounce
defer     unix  - - n -   0 bounce
trace     unix  - - n -   0 bounce
verify    unix  - - n -   1 verify
proxymap  unix  - - n -   - proxymap
error     unix  - - n -   - error
retry     unix  - - n -   - error
discard   unix  - - n -   - discard
smtp      unix  - - n -   - smtp
anvil     unix  - - n -   1 anvil
scache    unix  - - n -   1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
`;
}

function postfix(configDir: string, command: string): { ok: boolean; output: string } {
  const result = spawnSync('postfix', ['-c', configDir, command], { encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

export class PostfixInstance {
  readonly dir: string;
  readonly configDir: string;
  readonly port: number;
  #stopped = false;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.configDir = path.join(dir, 'etc');
    this.port = port;
  }

  /** Starts a fresh instance in `dir` (stopping and wiping one left there by an aborted run). */
  static async start(dir: string, options: PostfixOptions = {}): Promise<PostfixInstance> {
    if (process.getuid?.() !== 0) throw new Error('Postfix must be started as root');
    if (existsSync(path.join(dir, 'etc', 'main.cf'))) postfix(path.join(dir, 'etc'), 'stop');
    rmSync(dir, { recursive: true, force: true });
    const instance = new PostfixInstance(dir, await freePort());
    for (const sub of ['etc', 'queue', 'data']) mkdirSync(path.join(dir, sub), { recursive: true });
    // master.lock lives in data_directory, which must belong to the mail owner.
    const owner = execFileSync('postconf', ['-h', 'mail_owner'], { encoding: 'utf8' }).trim();
    const uid = Number(execFileSync('id', ['-u', owner], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', owner], { encoding: 'utf8' }));
    chownSync(path.join(dir, 'data'), uid, gid);
    writeFileSync(path.join(instance.configDir, 'main.cf'), mainCf(dir, options));
    writeFileSync(path.join(instance.configDir, 'master.cf'), masterCf(instance.port));
    const started = postfix(instance.configDir, 'start');
    if (!started.ok) throw new Error(`postfix -c ${instance.configDir} start failed: ${started.output}\n${instance.logTail()}`);
    const deadline = Date.now() + 15_000;
    while (!(await canConnect(instance.port))) {
      if (Date.now() > deadline) throw new Error(`Postfix smtpd not listening on ${instance.port}\n${instance.logTail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return instance;
  }

  /** The master daemon's pid: every other Postfix process of this instance is its child. */
  get masterPid(): number {
    return Number(readFileSync(path.join(this.dir, 'queue', 'pid', 'master.pid'), 'latin1').trim());
  }

  /** Messages still in the queue (files under incoming, active, deferred, hold). */
  queued(): number {
    const count = (dir: string): number => {
      try {
        return readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? count(path.join(dir, e.name)) : 1), 0);
      } catch {
        return 0;
      }
    };
    return ['incoming', 'active', 'deferred', 'hold'].reduce((n, q) => n + count(path.join(this.dir, 'queue', q)), 0);
  }

  /** Waits (at most `timeoutMs`) until the queue manager has delivered (or discarded) every queued message. */
  async drained(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.queued() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  /** How many deliveries the discard or smtp transport logged as sent. */
  sent(): number {
    try {
      return readFileSync(path.join(this.dir, 'maillog'), 'utf8').split('\n').filter((l) => /postfix\/(discard|smtp)\[\d+\]: .*status=sent/.test(l)).length;
    } catch {
      return 0;
    }
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(path.join(this.dir, 'maillog'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no maillog)';
    }
  }

  /** `postfix stop` (which waits for the master to exit), then removes queue and config. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const stopped = postfix(this.configDir, 'stop');
    if (!stopped.ok) process.stderr.write(`postfix stop: ${stopped.output}\n`);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
