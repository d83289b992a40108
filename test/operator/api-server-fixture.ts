// One real API server per test file (etcd + kube-apiserver on loopback, CRDs applied).
import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../kafka/broker.ts';
import { KubeApiServer } from '../k8s/api-server.ts';

export async function startTestApiServer(name: string): Promise<KubeApiServer> {
  const runs = path.join(repoRoot, '.cache', 'test-runs');
  mkdirSync(runs, { recursive: true });
  const server = new KubeApiServer({ dir: mkdtempSync(path.join(runs, `k8s-${name}-`)), removeDirOnStop: true });
  await server.start();
  return server;
}
