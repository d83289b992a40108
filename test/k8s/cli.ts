// `npm run k8s:start` / `npm run k8s:stop`: the tests' API server (etcd + kube-apiserver on
// loopback, CRDs applied), for trying the operator with kubectl without a cluster.
// `npm run k8s:cluster`: a one-node cluster whose pods run (node.ts), in the foreground until
// Ctrl-C, which stops every pod and process and cleans the machine up.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../kafka/broker.ts';
import { KubeApiServer } from './api-server.ts';
import { BRIDGE_ADDRESS, KubeNode, createBridge } from './node.ts';
import { isRunning } from '../helpers/pids.ts';

// MTRELAY_K8S_DEV_DIR moves it (the tests use their own folder, not the developer's server).
const dir = process.env.MTRELAY_K8S_DEV_DIR ?? path.join(repoRoot, '.state', 'k8s-dev');
const stateFile = path.join(dir, 'api-server.json');

interface State { pids: number[]; kubeconfig: string }

async function stop(state: State): Promise<void> {
  for (const pid of state.pids) {
    if (isRunning(pid)) process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && isRunning(pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  }
}

const command = process.argv[2];
const previous = existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, 'utf8')) as State : undefined;
if (command === 'start') {
  if (previous && previous.pids.every(isRunning)) {
    console.log(previous.kubeconfig);
    process.exit(0);
  }
  if (previous) await stop(previous);
  rmSync(dir, { recursive: true, force: true }); // certificates and tokens are made afresh
  const server = new KubeApiServer({ dir, detached: true });
  await server.start();
  writeFileSync(stateFile, JSON.stringify({ pids: server.pids, kubeconfig: server.kubeconfig } satisfies State));
  console.error(`kube-apiserver at ${server.server} (CRDs applied); try: kubectl --kubeconfig ${server.kubeconfig} get mtrelay -A`);
  console.log(server.kubeconfig);
  process.exit(0);
} else if (command === 'cluster') {
  const clusterDir = path.join(repoRoot, '.state', 'k8s-cluster');
  rmSync(clusterDir, { recursive: true, force: true });
  const started = Date.now();
  createBridge();
  const api = new KubeApiServer({ dir: path.join(clusterDir, 'api-server'), address: BRIDGE_ADDRESS });
  await api.start();
  const node = new KubeNode(path.join(clusterDir, 'node'), api);
  const stopAll = async () => {
    await node.stop();
    await api.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stopAll());
  process.once('SIGTERM', () => void stopAll());
  await node.start().catch(async (error: unknown) => {
    console.error(error);
    await stopAll();
  });
  console.error(`one-node cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s (node: ${JSON.stringify(node.timings)}); pods get addresses in 10.88.77.0/24, NodePorts answer on 127.0.0.1`);
  console.error(`images: ${node.importHint}; Ctrl-C stops it and cleans up`);
  console.log(api.kubeconfig);
} else if (command === 'stop') {
  if (!previous) {
    console.error('no development API server is running');
    process.exit(0);
  }
  await stop(previous);
  rmSync(stateFile);
  console.error('development API server stopped');
} else {
  console.error('usage: node test/k8s/cli.ts start|stop|cluster');
  process.exit(2);
}
