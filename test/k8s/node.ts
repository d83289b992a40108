// A one-node Kubernetes cluster whose pods really run, for the chart's tests: the API server
// of api-server.ts bound to a bridge of its own, plus kube-controller-manager,
// kube-scheduler, containerd 2, kubelet, kube-proxy and metrics-server (all built by
// build-tools.ts), runc and the CNI plugins from Debian. Pods live on that bridge (10.88.77.0/24); the host reaches them,
// and they reach the host's services (API server, Kafka, test sinks) at the bridge's address.
// NodePort Services answer on 127.0.0.1. Facts this relies on are in the notes on running a
// kubelet on this kind of machine: cgroup v1 (failCgroupV1: false), no CAP_SYS_RESOURCE
// (restrict_oom_score_adj), 20000 open files at most, no registry (images are imported).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../kafka/broker.ts';
import { ensureNodeTools } from './build-tools.ts';
import type { KubeApiServer } from './api-server.ts';

export const BRIDGE = 'mtrk8s0';
export const BRIDGE_ADDRESS = '10.88.77.1';
const POD_SUBNET = '10.88.77.0/24';
export const PAUSE_IMAGE = 'localhost/mtrelay-test/pause:1';
/** Kernel settings kubelet and kube-proxy change: put back when the node stops. */
const SYSCTLS = ['kernel.panic', 'kernel.panic_on_oops', 'vm.overcommit_memory', 'net.ipv4.conf.all.route_localnet', 'net.bridge.bridge-nf-call-iptables', 'net.ipv4.ip_forward'];

type Tools = ReturnType<typeof ensureNodeTools>;

function run(command: string, args: string[], input?: string): string {
  return execFileSync(command, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function tryRun(command: string, args: string[]): void {
  spawnSync(command, args, { stdio: 'ignore' });
}

async function waitFor(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${what}: the process exited during start-up`);
    if (await Promise.resolve().then(check).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} not within ${timeoutMs / 1000} s`);
}

/** Creates the pods' bridge before the API server starts, so the API server can listen on its address. */
export function createBridge(): void {
  if (spawnSync('ip', ['link', 'show', BRIDGE], { stdio: 'ignore' }).status !== 0) {
    run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  }
  if (!run('ip', ['-4', 'addr', 'show', BRIDGE]).includes(`${BRIDGE_ADDRESS}/24`)) run('ip', ['addr', 'add', `${BRIDGE_ADDRESS}/24`, 'dev', BRIDGE]);
  run('ip', ['link', 'set', BRIDGE, 'up']);
}

export class KubeNode {
  readonly dir: string;
  readonly #api: KubeApiServer;
  #tools: Tools | undefined;
  readonly #children: { name: string; child: ChildProcess }[] = [];
  readonly #sysctls = new Map<string, string>();
  /** Seconds each part took to start, for the README's numbers. */
  readonly timings: Record<string, number> = {};

  constructor(dir: string, api: KubeApiServer) {
    this.dir = dir;
    this.#api = api;
  }

  get socket(): string {
    return path.join(this.dir, 'containerd', 'containerd.sock');
  }

  #spawn(name: string, binary: string, args: string[]): ChildProcess {
    const log = openSync(path.join(this.dir, `${name}.log`), 'a');
    // containerd finds its shim on the PATH: the one built beside it.
    const env = { ...process.env, PATH: `${path.dirname(binary)}:${process.env.PATH ?? '/usr/bin:/bin'}` };
    const child = spawn(binary, args, { stdio: ['ignore', log, log], env });
    this.#children.push({ name, child });
    return child;
  }

  async start(): Promise<void> {
    const started = Date.now();
    mkdirSync(this.dir, { recursive: true });
    const tools = (this.#tools = ensureNodeTools());
    this.timings.tools = (Date.now() - started) / 1000;
    for (const name of SYSCTLS) {
      const value = spawnSync('sysctl', ['-n', name], { encoding: 'utf8' });
      if (value.status === 0) this.#sysctls.set(name, value.stdout.trim());
    }
    createBridge();
    // Pods reach each other and the outside through the bridge; the host forwards for them.
    tryRun('sysctl', ['-w', 'net.ipv4.ip_forward=1']);
    tryRun('modprobe', ['br_netfilter']);

    await this.#startContainerd(tools);
    this.importImage(this.#pauseArchive());
    this.#startControllers(tools);
    await this.#startKubelet(tools);
    await this.#startKubeProxy(tools);
    await this.#startMetricsServer(tools);
    // kube-controller-manager at work: every namespace gets its service account and CA bundle.
    await waitFor('service account default/default', 60_000, () => {
      this.#api.kubectl(['get', 'serviceaccount', 'default', '-n', 'default']);
      this.#api.kubectl(['get', 'configmap', 'kube-root-ca.crt', '-n', 'default']);
      return true;
    });
    this.timings.total = (Date.now() - started) / 1000;
  }

  async #startContainerd(tools: Tools): Promise<void> {
    const t = Date.now();
    const root = path.join(this.dir, 'containerd');
    const cni = path.join(this.dir, 'cni');
    mkdirSync(path.join(cni, 'net.d'), { recursive: true });
    writeFileSync(path.join(cni, 'net.d', '10-mtrelay-test.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: 'mtrelay-test',
      plugins: [
        { type: 'bridge', bridge: BRIDGE, isGateway: true, ipMasq: false, hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET, gateway: BRIDGE_ADDRESS }]], dataDir: path.join(cni, 'ipam'), routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    }, null, 2));
    const config = path.join(root, 'config.toml');
    mkdirSync(root, { recursive: true });
    writeFileSync(config, containerdConfig(root, cni));
    const child = this.#spawn('containerd', tools.containerd, ['--config', config]);
    await waitFor('containerd', 30_000, () => existsSync(this.socket) && this.#ctr(['version']).includes('Server'), () => child.exitCode === null);
    this.timings.containerd = (Date.now() - t) / 1000;
  }

  #ctr(args: string[]): string {
    return run(this.#tools!.ctr, ['--address', this.socket, '--namespace', 'k8s.io', ...args]);
  }

  crictl(args: string[]): string {
    return run(this.#tools!.crictl, ['--runtime-endpoint', `unix://${this.socket}`, '--image-endpoint', `unix://${this.socket}`, ...args]);
  }

  /** How to import an image by hand into this node's containerd. */
  get importHint(): string {
    return `${this.#tools?.ctr ?? 'ctr'} --address ${this.socket} --namespace k8s.io images import IMAGE.tar`;
  }

  /** Imports an image archive (docker-archive or oci-archive) for the kubelet: no registry here. */
  importImage(archive: string): void {
    this.#ctr(['images', 'import', '--no-unpack', '--all-platforms', archive]);
  }

  /** Gives an imported image a second name, as pushing it under a new tag would. */
  tagImage(source: string, target: string): void {
    this.#ctr(['images', 'tag', '--force', source, target]);
  }

  /** The pause image every pod's sandbox runs: a static program that waits for its end, built here. */
  #pauseArchive(): string {
    const archive = path.join(this.dir, 'pause.tar');
    const build = path.join(this.dir, 'pause-build');
    mkdirSync(path.join(build, 'rootfs'), { recursive: true });
    execFileSync('go', ['build', '-trimpath', '-ldflags', '-s -w', '-o', path.join(build, 'rootfs', 'pause'), './pause'],
      { cwd: path.join(import.meta.dirname, 'containerd'), env: { ...process.env, CGO_ENABLED: '0' }, stdio: 'inherit' });
    writeDockerArchive(archive, PAUSE_IMAGE, path.join(build, 'rootfs'), { Entrypoint: ['/pause'] });
    return archive;
  }

  #startControllers(tools: Tools): void {
    const { kubeconfig, caCert } = this.#api;
    const pki = path.join(this.#api.dir, 'pki');
    this.#spawn('kube-controller-manager', tools['kube-controller-manager'], [
      '--kubeconfig', kubeconfig, '--authentication-kubeconfig', kubeconfig, '--authorization-kubeconfig', kubeconfig,
      '--bind-address', '127.0.0.1', '--secure-port', '0', '--leader-elect=false',
      '--root-ca-file', caCert, '--service-account-private-key-file', path.join(pki, 'service-account.key'),
      '--use-service-account-credentials=false', '--controllers', '*,-node-ipam-controller',
      '--cert-dir', path.join(this.dir, 'controller-manager-certs'),
    ]);
    this.#spawn('kube-scheduler', tools['kube-scheduler'], [
      '--kubeconfig', kubeconfig, '--authentication-kubeconfig', kubeconfig, '--authorization-kubeconfig', kubeconfig,
      '--bind-address', '127.0.0.1', '--secure-port', '0', '--leader-elect=false', '--cert-dir', path.join(this.dir, 'scheduler-certs'),
    ]);
  }

  async #startKubelet(tools: Tools): Promise<void> {
    const t = Date.now();
    const root = path.join(this.dir, 'kubelet');
    mkdirSync(root, { recursive: true });
    const resolv = path.join(this.dir, 'resolv.conf');
    writeFileSync(resolv, 'nameserver 127.0.0.1\n'); // pods need no DNS here: every address in the tests is an IP
    const config = path.join(this.dir, 'kubelet.yaml');
    writeFileSync(config, [
      'apiVersion: kubelet.config.k8s.io/v1beta1', 'kind: KubeletConfiguration',
      'failCgroupV1: false', 'cgroupDriver: cgroupfs', 'cgroupsPerQOS: true',
      `containerRuntimeEndpoint: unix://${this.socket}`,
      'authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}', 'authorization: {mode: AlwaysAllow}',
      'failSwapOn: false', 'enforceNodeAllocatable: []', 'protectKernelDefaults: false', 'localStorageCapacityIsolation: true',
      'address: 127.0.0.1', 'readOnlyPort: 0', 'healthzBindAddress: 127.0.0.1', 'healthzPort: 0', 'port: 10250',
      `podLogsDir: ${path.join(this.dir, 'pod-logs')}`, `volumePluginDir: ${path.join(this.dir, 'volume-plugins')}`,
      `resolvConf: ${resolv}`, 'makeIPTablesUtilChains: false', 'serializeImagePulls: false',
      'evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}',
      'imageGCHighThresholdPercent: 100', 'imageGCLowThresholdPercent: 99', 'maxPods: 60', '',
    ].join('\n'));
    const child = this.#spawn('kubelet', tools.kubelet, [
      '--config', config, '--root-dir', root, '--cert-dir', path.join(this.dir, 'kubelet-pki'),
      '--kubeconfig', this.#api.kubeconfig, '--hostname-override', 'localhost', '--node-ip', BRIDGE_ADDRESS,
    ]);
    await waitFor('node localhost Ready', 120_000, () => {
      const status = this.#api.kubectl(['get', 'node', 'localhost', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return status === 'True';
    }, () => child.exitCode === null);
    this.timings.kubelet = (Date.now() - t) / 1000;
  }

  async #startKubeProxy(tools: Tools): Promise<void> {
    const [metricsPort, healthzPort] = [await freePort(), await freePort()];
    const config = path.join(this.dir, 'kube-proxy.yaml');
    writeFileSync(config, [
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1', 'kind: KubeProxyConfiguration', 'mode: iptables',
      `clientConnection: {kubeconfig: ${this.#api.kubeconfig}}`, 'hostnameOverride: localhost', `clusterCIDR: ${POD_SUBNET}`,
      // Node ports on loopback only: the tests' stand-in for a LoadBalancer.
      'nodePortAddresses: ["127.0.0.1/32"]',
      // The conntrack table is the host's: leave its limits alone.
      'conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}',
      `metricsBindAddress: 127.0.0.1:${metricsPort}`, `healthzBindAddress: 127.0.0.1:${healthzPort}`, '',
    ].join('\n'));
    const child = this.#spawn('kube-proxy', tools['kube-proxy'], ['--config', config]);
    // Services work once it has written the kubernetes Service's rules.
    await waitFor('kube-proxy rules', 60_000, () => run('iptables', ['-t', 'nat', '-S', 'KUBE-SERVICES']).includes('default/kubernetes'), () => child.exitCode === null);
  }

  /**
   * metrics-server on the host, registered as the metrics.k8s.io API (the API server's
   * aggregation layer reaches it on the bridge's address): it reads each kubelet's resource
   * metrics, which is what HorizontalPodAutoscalers and `kubectl top` read. Its first figures
   * come one scrape (15 s) after the pods start.
   */
  async #startMetricsServer(tools: Tools): Promise<void> {
    const t = Date.now();
    const port = await freePort();
    const kubeconfig = this.#api.kubeconfig;
    const child = this.#spawn('metrics-server', tools['metrics-server'], [
      '--kubeconfig', kubeconfig, '--authentication-kubeconfig', kubeconfig, '--authorization-kubeconfig', kubeconfig,
      '--bind-address', BRIDGE_ADDRESS, '--secure-port', String(port), '--cert-dir', path.join(this.dir, 'metrics-server-certs'),
      // The kubelet serves its own self-signed certificate for the name localhost (the node's Hostname address).
      '--kubelet-preferred-address-types', 'Hostname', '--kubelet-insecure-tls', '--metric-resolution', '15s',
    ]);
    this.#api.kubectl(['apply', '-f', '-'], [
      'apiVersion: v1', 'kind: Service', 'metadata: {name: metrics-server, namespace: kube-system}',
      'spec: {ports: [{port: 443, targetPort: ' + port + '}]}',
      '---', 'apiVersion: v1', 'kind: Endpoints', 'metadata: {name: metrics-server, namespace: kube-system}',
      `subsets: [{addresses: [{ip: ${BRIDGE_ADDRESS}}], ports: [{port: ${port}}]}]`,
      '---', 'apiVersion: apiregistration.k8s.io/v1', 'kind: APIService', 'metadata: {name: v1beta1.metrics.k8s.io}',
      'spec: {service: {name: metrics-server, namespace: kube-system, port: 443}, group: metrics.k8s.io, version: v1beta1,',
      '  insecureSkipTLSVerify: true, groupPriorityMinimum: 100, versionPriority: 100}', '',
    ].join('\n'));
    await waitFor('the metrics.k8s.io API', 60_000, () => this.#api.kubectl(['get', 'apiservice', 'v1beta1.metrics.k8s.io',
      '-o', 'jsonpath={.status.conditions[?(@.type=="Available")].status}']) === 'True', () => child.exitCode === null);
    this.timings.metricsServer = (Date.now() - t) / 1000;
  }

  /** Stops every pod, then the processes, and undoes what they changed on the machine. */
  async stop(): Promise<void> {
    if (this.#tools && existsSync(this.socket)) {
      try {
        this.crictl(['rmp', '--all', '--force']);
      } catch { /* containerd may be gone already */ }
    }
    for (const { child } of [...this.#children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    cleanUpMachine(this.dir, this.socket);
    for (const [name, value] of this.#sysctls) tryRun('sysctl', ['-w', `${name}=${value}`]);
  }
}

/** What kubelet, kube-proxy and the CNI plugins leave on the machine, removed; safe to run twice. */
export function cleanUpMachine(dir: string, socket?: string): void {
  // Shims (and so the containers) of pods that outlived containerd: a stop that went wrong.
  if (socket) tryRun('pkill', ['-9', '-f', `containerd-shim-runc-v2 .*-address ${socket}`]);
  // Mounts under the node's folder (kubelet bind-mounts its root dir onto itself), deepest first.
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${dir}/`) || m === dir).sort((a, b) => b.length - a.length);
  for (const mount of mounts) tryRun('umount', ['-l', mount]);
  // /kubepods cgroups at the top of every v1 hierarchy, deepest first.
  for (const hierarchy of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
    const top = path.join('/sys/fs/cgroup', hierarchy, 'kubepods');
    if (!existsSync(top)) continue;
    const dirs = run('find', [top, '-depth', '-type', 'd']).split('\n').filter(Boolean);
    // Whatever still runs in a pod's cgroup (a container whose shim is gone) goes first.
    for (const d of dirs) {
      const procs = existsSync(path.join(d, 'cgroup.procs')) ? readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean) : [];
      for (const pid of procs) tryRun('kill', ['-9', pid]);
    }
    for (const d of dirs) tryRun('rmdir', [d]);
  }
  for (const iptables of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle']) {
      const rules = spawnSync(iptables, ['-t', table, '-S'], { encoding: 'utf8' }).stdout ?? '';
      // Jumps into the chains first, then the chains themselves.
      for (const line of rules.split('\n')) {
        if (/^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j (KUBE-|CNI-)/.test(line)) tryRun(iptables, ['-t', table, ...ruleWords(line.replace(/^-A/, '-D'))]);
      }
      const chains = rules.split('\n').filter((l) => /^-N (KUBE-|CNI-)/.test(l)).map((l) => l.slice(3).trim());
      for (const chain of chains) tryRun(iptables, ['-t', table, '-F', chain]);
      for (const chain of chains) tryRun(iptables, ['-t', table, '-X', chain]);
    }
  }
  tryRun('ip', ['link', 'delete', BRIDGE]);
  for (const fixed of ['/var/lib/kubelet', '/var/log/containers', '/var/log/pods']) {
    if (existsSync(fixed)) rmSync(fixed, { recursive: true, force: true });
  }
}

/** The words of a rule as `iptables -S` prints it: quoted comments stay one word, without their quotes. */
function ruleWords(rule: string): string[] {
  return [...rule.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/** containerd 2's config (version 3): its own root, state and socket; the CRI plugin as this machine needs it. */
function containerdConfig(root: string, cni: string): string {
  return `version = 3
root = "${root}/root"
state = "${root}/state"

[grpc]
  address = "${root}/containerd.sock"

[ttrpc]
  address = "${root}/containerd.sock.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "native"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "${PAUSE_IMAGE}"

[plugins.'io.containerd.cri.v1.runtime']
  # Root here lacks CAP_SYS_RESOURCE: without this runc fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "${cni}/net.d"
`;
}

/**
 * An image archive in the docker-archive layout (`ctr images import` reads it) from a root file
 * system folder: one layer, a config, a manifest naming the image. Small images only (the pause
 * image); the project's own image comes from buildah.
 */
function writeDockerArchive(archive: string, name: string, rootfs: string, config: Record<string, unknown>): void {
  const work = `${archive}.d`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  run('tar', ['-C', rootfs, '-cf', path.join(work, 'layer.tar'), '.']);
  const layerDigest = run('sha256sum', [path.join(work, 'layer.tar')]).split(' ')[0]!;
  const imageConfig = JSON.stringify({
    architecture: 'amd64', os: 'linux', config,
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
  });
  writeFileSync(path.join(work, 'config.json'), imageConfig);
  writeFileSync(path.join(work, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: [name], Layers: ['layer.tar'] }]));
  run('tar', ['-C', work, '-cf', archive, 'manifest.json', 'config.json', 'layer.tar']);
  rmSync(work, { recursive: true, force: true });
}
