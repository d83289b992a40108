// A private PostgreSQL 15 server (Debian's postgresql-15) for tests and benchmarks: a new
// cluster made with initdb in a folder of the test's, a user with a password (SCRAM), and the
// server run as a child process, so a test that is killed takes it along. As root, initdb and
// postgres run as the `postgres` user the Debian package creates (PostgreSQL refuses root).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../kafka/broker.ts';

export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';

export interface PostgresOptions {
  /** Address to listen on (the cluster test uses the pods' bridge). */
  host?: string;
  /** Settings for postgresql.conf, e.g. { fsync: 'off' } for a benchmark's throwaway load. */
  settings?: Record<string, string>;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) };
}

export class PostgresServer {
  readonly dir: string;
  readonly host: string;
  readonly user = 'mtrelay';
  readonly password = randomBytes(12).toString('hex');
  readonly database = 'mtrelay';
  port = 0;
  #process?: ChildProcess;
  readonly #settings: Record<string, string>;

  constructor(options: PostgresOptions = {}) {
    // Its own folder right under the temporary directory: the postgres user must be able to reach it.
    this.dir = mkdtempSync(path.join(tmpdir(), 'mtrelay-postgres-'));
    this.host = options.host ?? '127.0.0.1';
    this.#settings = options.settings ?? {};
  }

  /** A libpq URI for the test database. */
  get url(): string {
    return `postgres://${this.user}:${this.password}@${this.host}:${this.port}/${this.database}`;
  }

  async start(): Promise<void> {
    const owner = postgresUser();
    const data = path.join(this.dir, 'data');
    if (owner) chownSync(this.dir, owner.uid, owner.gid);
    const passwordFile = path.join(this.dir, 'password');
    writeFileSync(passwordFile, `${this.password}\n`, { mode: 0o600 });
    if (owner) chownSync(passwordFile, owner.uid, owner.gid);
    execFileSync(path.join(POSTGRES_BIN, 'initdb'), ['-D', data, '-U', this.user, `--pwfile=${passwordFile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-locale', '--no-sync'],
      { stdio: ['ignore', 'ignore', 'pipe'], ...owner });
    // Clients from the bridge (pods) as well as loopback, always with the password.
    writeFileSync(path.join(data, 'pg_hba.conf'), 'local all all scram-sha-256\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n');
    this.port = await freePort();
    const settings = { listen_addresses: `'${this.host}'`, port: String(this.port), unix_socket_directories: `'${this.dir}'`, max_connections: '50', ...this.#settings };
    writeFileSync(path.join(data, 'postgresql.auto.conf'), Object.entries(settings).map(([k, v]) => `${k} = ${v}\n`).join(''));
    if (owner) for (const file of ['pg_hba.conf', 'postgresql.auto.conf']) chownSync(path.join(data, file), owner.uid, owner.gid);
    await this.resume();
    const admin = new pg.Client({ connectionString: `postgres://${this.user}:${this.password}@${this.host}:${this.port}/postgres` });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${this.database}`);
    } finally {
      await admin.end();
    }
  }

  /** Runs the server (again, after halt()) on the same data and port. */
  async resume(): Promise<void> {
    const log = openSync(path.join(this.dir, 'postgres.log'), 'a');
    this.#process = spawn(path.join(POSTGRES_BIN, 'postgres'), ['-D', path.join(this.dir, 'data')], { stdio: ['ignore', log, log], ...postgresUser() });
    await this.#waitReady();
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.#process?.exitCode !== null) throw new Error(`postgres exited with ${this.#process?.exitCode}: ${this.log().slice(-2000)}`);
      const client = new pg.Client({ connectionString: `postgres://${this.user}:${this.password}@${this.host}:${this.port}/postgres` });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (error) {
        await client.end().catch(() => undefined);
        if (Date.now() > deadline) throw new Error(`postgres did not accept connections in 30 s: ${(error as Error).message}\n${this.log().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  log(): string {
    try {
      return readFileSync(path.join(this.dir, 'postgres.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** A client of the test database (for checks the test makes itself). */
  async client(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    return client;
  }

  /** Fast shutdown (SIGINT): open connections are closed, the data stays for resume(). */
  async halt(): Promise<void> {
    const child = this.#process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  /** Shuts the server down and removes its folder. */
  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
