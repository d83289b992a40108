// A real Kubernetes control plane on loopback for the operator's tests and for development:
// etcd plus kube-apiserver (built from Go modules by build-tools.ts), a CA and serving
// certificate made with openssl, a static admin token, service-account signing keys (so
// `kubectl create token` works and RBAC can be tested), and a kubeconfig. The CRDs from
// crds/ are applied before start() returns.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { freePort, repoRoot } from '../kafka/broker.ts';
import { createTestCa } from '../helpers/tls.ts';
import { ensureK8sTools } from './build-tools.ts';

export interface ApiServerOptions {
  /** Folder for etcd's data, certificates, logs and the kubeconfig; created if missing. */
  dir: string;
  /** Keep both processes running after this process exits (development use). */
  detached?: boolean;
  /** Apply the CRDs from crds/ once the API server is ready (default true). */
  applyCrds?: boolean;
  /** Remove `dir` (etcd's data, the logs) once stopped: a test's server leaves nothing in the cache. */
  removeDirOnStop?: boolean;
  /**
   * For a cluster whose pods run (node.ts): listen on this address (the pods' bridge), admit
   * service accounts into pods, publish the address as the `kubernetes` Service's endpoint, and
   * serve aggregated APIs (the node's metrics-server).
   * Without it: loopback, and no pods ever run.
   */
  address?: string;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${what} exited during start-up`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000} s`);
}

export class KubeApiServer {
  readonly dir: string;
  readonly options: ApiServerOptions;
  readonly token = randomBytes(24).toString('hex');
  kubeconfig = '';
  server = '';
  caCert = '';
  #etcd: ChildProcess | undefined;
  #apiServer: ChildProcess | undefined;
  #kubectl = '';

  get #cacheDir(): string {
    return path.join(this.dir, 'kubectl-cache');
  }

  constructor(options: ApiServerOptions) {
    this.options = options;
    this.dir = options.dir;
  }

  get pids(): number[] {
    return [this.#apiServer?.pid, this.#etcd?.pid].filter((p): p is number => p !== undefined);
  }

  #spawn(binary: string, args: string[], logName: string): ChildProcess {
    const log = openSync(path.join(this.dir, logName), 'a');
    const child = spawn(binary, args, { stdio: ['ignore', log, log], detached: this.options.detached ?? false });
    if (this.options.detached) child.unref();
    return child;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const tools = ensureK8sTools();
    this.#kubectl = tools.kubectl;
    const pki = path.join(this.dir, 'pki');
    mkdirSync(pki, { recursive: true });
    const ca = createTestCa(pki);
    this.caCert = ca.caCert;
    const address = this.options.address ?? '127.0.0.1';
    const serving = ca.issue('apiserver', [...new Set(['127.0.0.1', address]), 'localhost', 'kubernetes.default.svc', '10.0.0.1']);
    const saKey = path.join(pki, 'service-account.key');
    const saPub = path.join(pki, 'service-account.pub');
    execFileSync('openssl', ['genrsa', '-out', saKey, '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['rsa', '-in', saKey, '-pubout', '-out', saPub], { stdio: 'ignore' });
    const aggregation = this.options.address ? this.#aggregationFlags(pki) : [];
    const tokens = path.join(pki, 'tokens.csv');
    writeFileSync(tokens, `${this.token},admin,admin,"system:masters"\n`, { mode: 0o600 });

    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    this.#etcd = this.#spawn(tools.etcd, [
      '--name', 'test', '--data-dir', path.join(this.dir, 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${etcdClient}`, '--advertise-client-urls', `http://127.0.0.1:${etcdClient}`,
      '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster', `test=http://127.0.0.1:${etcdPeer}`, '--unsafe-no-fsync', '--log-level', 'warn',
    ], 'etcd.log');
    const etcd = this.#etcd;
    await waitFor('etcd', 30_000, async () => (await fetch(`http://127.0.0.1:${etcdClient}/health`)).ok, () => etcd.exitCode === null);

    this.server = `https://${address}:${apiPort}`;
    this.#apiServer = this.#spawn(tools['kube-apiserver'], [
      '--etcd-servers', `http://127.0.0.1:${etcdClient}`,
      '--bind-address', address, '--advertise-address', address, '--secure-port', String(apiPort),
      '--tls-cert-file', serving.cert, '--tls-private-key-file', serving.key, '--client-ca-file', ca.caCert,
      '--token-auth-file', tokens, '--authorization-mode', 'RBAC',
      '--service-account-issuer', 'https://kubernetes.default.svc', '--service-account-key-file', saPub,
      '--service-account-signing-key-file', saKey, '--api-audiences', 'https://kubernetes.default.svc',
      '--service-cluster-ip-range', '10.0.0.0/24', '--enable-priority-and-fairness=false',
      ...(this.options.address ? ['--endpoint-reconciler-type', 'lease'] : ['--disable-admission-plugins', 'ServiceAccount', '--endpoint-reconciler-type', 'none']),
      ...aggregation, '--cert-dir', path.join(pki, 'generated'),
    ], 'kube-apiserver.log');
    const apiServer = this.#apiServer;
    const caPem = readFileSync(ca.caCert);
    await waitFor('kube-apiserver', 90_000, () => this.#ready(caPem), () => apiServer.exitCode === null);

    this.kubeconfig = path.join(this.dir, 'kubeconfig');
    writeFileSync(this.kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: test',
      'clusters:', '- name: test', '  cluster:', `    server: ${this.server}`, `    certificate-authority: ${ca.caCert}`,
      'users:', '- name: admin', '  user:', `    token: ${this.token}`,
      'contexts:', '- name: test', '  context:', '    cluster: test', '    user: admin', '    namespace: default', '',
    ].join('\n'), { mode: 0o600 });
    // The bootstrap controller creates the default namespace shortly after /readyz.
    await waitFor('namespace default', 30_000, async () => { this.kubectl(['get', 'namespace', 'default']); return true; }, () => true);
    if (this.options.applyCrds ?? true) {
      this.kubectl(['apply', '-f', path.join(repoRoot, 'crds')]);
      this.kubectl(['wait', '--for', 'condition=Established', '--timeout', '60s', 'crd', '-l', 'app.kubernetes.io/part-of=mtrelay']);
      // kubectl caches discovery; drop what it learned before the CRDs existed.
      rmSync(this.#cacheDir, { recursive: true, force: true });
    }
  }

  /**
   * The aggregation layer, so that a cluster's metrics-server can serve metrics.k8s.io: the API
   * server proxies to it with a front-proxy client certificate, and the extension server trusts
   * the user headers of requests signed by that CA. Extension servers run on the host, so
   * requests go to their endpoints' addresses rather than through a ClusterIP.
   */
  #aggregationFlags(pki: string): string[] {
    const dir = path.join(pki, 'front-proxy');
    mkdirSync(dir, { recursive: true });
    const frontProxyCa = createTestCa(dir);
    const client = frontProxyCa.issue('front-proxy-client', ['front-proxy-client'], { usage: 'clientAuth' });
    return [
      '--requestheader-client-ca-file', frontProxyCa.caCert, '--requestheader-allowed-names', 'front-proxy-client',
      '--requestheader-username-headers', 'X-Remote-User', '--requestheader-group-headers', 'X-Remote-Group',
      '--requestheader-extra-headers-prefix', 'X-Remote-Extra-',
      '--proxy-client-cert-file', client.cert, '--proxy-client-key-file', client.key, '--enable-aggregator-routing=true',
    ];
  }

  #ready(ca: Buffer): Promise<boolean> {
    return new Promise((resolve) => {
      const request = https.get(`${this.server}/readyz`, { ca, headers: { authorization: `Bearer ${this.token}` } }, (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      });
      request.on('error', () => resolve(false));
      request.setTimeout(2000, () => request.destroy());
    });
  }

  /** Runs the real kubectl against this API server; throws with kubectl's stderr when it fails. */
  kubectl(args: string[], input?: string): string {
    try {
      return execFileSync(this.#kubectl, ['--kubeconfig', this.kubeconfig, '--cache-dir', this.#cacheDir, ...args], {
        input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000, maxBuffer: 256 * 1024 * 1024,
      });
    } catch (error) {
      const { stderr, stdout } = error as { stderr?: string; stdout?: string };
      throw Object.assign(new Error(`kubectl ${args.join(' ')} failed: ${(stderr || stdout || String(error)).trim().slice(0, 2000)}`), { stderr });
    }
  }

  /** A bearer token for a service account, as a pod would get it. */
  serviceAccountToken(namespace: string, name: string): string {
    return this.kubectl(['create', 'token', name, '-n', namespace, '--duration', '1h']).trim();
  }

  /** A kubeconfig that authenticates with the given token instead of the admin's. */
  kubeconfigWithToken(token: string, file: string): string {
    writeFileSync(file, readFileSync(this.kubeconfig, 'utf8').replace(`token: ${this.token}`, `token: ${token}`), { mode: 0o600 });
    return file;
  }

  async stop(): Promise<void> {
    for (const child of [this.#apiServer, this.#etcd]) {
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.options.removeDirOnStop) rmSync(this.dir, { recursive: true, force: true });
  }
}
