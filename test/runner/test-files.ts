// Which test files there are and what each needs. A file says so in two comment lines near
// its top, which the runner reads without importing it:
//
//   // @needs kafka processes swaks
//   // @limit 120s
//
// A file without @needs is a unit test: no broker, no API server, no child process; those
// make up `npm run test:unit`. The runner starts only what the chosen files need, and stops a
// file that outlives its @limit (30 s when not given).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SystemToolName } from '../system-deps.ts';

export const NEEDS = {
  kafka: { tools: ['java', 'maven'], meaning: 'a real Kafka broker, started once for the run (MTRELAY_TEST_KAFKA)' },
  'kafka-own': { tools: ['java', 'maven'], meaning: 'Kafka brokers the file starts and stops itself (the jars, java)' },
  k8s: { tools: [], meaning: 'kube-apiserver, etcd and kubectl, built from Go modules before the run' },
  cluster: { tools: ['containers', 'node'], meaning: 'a one-node cluster whose pods run (test/k8s/node.ts): kubelet, kube-scheduler, kube-controller-manager, kube-proxy and containerd, built from Go modules before the run' },
  processes: { tools: [], meaning: 'mtrelay (or other) child processes' },
  swaks: { tools: ['swaks'], meaning: 'the swaks SMTP client, with TLS' },
  openssl: { tools: ['openssl'], meaning: 'the openssl CLI (the test CA)' },
  testssl: { tools: ['testssl'], meaning: 'testssl.sh, the TLS scanner (Debian package)' },
  dkimpy: { tools: ['dkimpy'], meaning: 'an independent DKIM verifier (Python dkimpy)' },
  image: { tools: ['containers'], meaning: 'the image built from the Dockerfile with buildah, run with podman' },
  chromium: { tools: ['chromium'], meaning: 'a real headless Chromium (test/helpers/browser.ts)' },
  postgres: { tools: ['postgres'], meaning: 'private PostgreSQL 15 servers the file starts (test/helpers/postgres.ts)' },
  chart: { tools: ['java', 'maven'], meaning: 'helm, helm-unittest and promtool built from Go modules, and the CRDs of the operators the chart renders resources for' },
} as const satisfies Record<string, { tools: readonly SystemToolName[]; meaning: string }>;

export type Need = keyof typeof NEEDS;

export const DEFAULT_LIMIT_MS = 30_000;

export interface TestFile {
  /** Relative to the repository root, with forward slashes. */
  file: string;
  needs: Need[];
  limitMs: number;
}

export class DirectiveError extends Error {}

/** Reads a file's @needs and @limit lines. */
export function parseDirectives(file: string, source: string): TestFile {
  const needsLine = /^\/\/ @needs (.+)$/m.exec(source)?.[1];
  const limitLine = /^\/\/ @limit (.+)$/m.exec(source)?.[1];
  const needs = (needsLine ?? '').split(/\s+/).filter(Boolean);
  for (const need of needs) {
    if (!(need in NEEDS)) throw new DirectiveError(`${file}: unknown need "${need}" (known: ${Object.keys(NEEDS).join(', ')})`);
  }
  let limitMs = DEFAULT_LIMIT_MS;
  if (limitLine !== undefined) {
    const match = /^(\d+)s$/.exec(limitLine.trim());
    if (!match) throw new DirectiveError(`${file}: @limit must be whole seconds like "90s", not "${limitLine}"`);
    limitMs = Number(match[1]) * 1000;
  }
  return { file, needs: needs as Need[], limitMs };
}

/** Every `*.test.ts` below `dir`, sorted. */
export function findTestFiles(root: string, dir = 'test'): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')))
    .sort();
}

export function readTestFile(root: string, file: string): TestFile {
  return parseDirectives(file, readFileSync(path.join(root, file), 'utf8'));
}

export const isUnit = (t: TestFile) => t.needs.length === 0;
