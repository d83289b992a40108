// The chart as the tests see it: rendered by the real helm with one of the value sets in
// charts/mtrelay/ci/, parsed into objects.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../kafka/broker.ts';
import { ensureChartTools } from './tools.ts';

export const chartDir = path.join(repoRoot, 'charts', 'mtrelay');

/** The value sets every chart test goes through: charts/mtrelay/ci/<name>-values.yaml. */
export const valueSets = readdirSync(path.join(chartDir, 'ci')).filter((f) => f.endsWith('-values.yaml')).map((f) => f.replace(/-values\.yaml$/, '')).sort();
export const valuesFile = (set: string) => path.join(chartDir, 'ci', `${set}-values.yaml`);

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

const tools = ensureChartTools(() => undefined);
export const { helmUnittest, promtool, thirdPartyCrds } = tools;

/** Runs helm; throws with its stderr (the chart's own failure messages) when it fails. */
export function helm(args: string[], env: Record<string, string> = {}): string {
  try {
    return execFileSync(tools.helm, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`helm ${args.join(' ')} failed: ${(stderr || stdout || String(error)).trim()}`);
  }
}

export interface RenderOptions {
  set?: string;
  /** --set flags, NAME=VALUE. */
  values?: string[];
  namespace?: string;
  release?: string;
}

/** `helm template` text of the chart with a value set (and extra --set values). */
export function renderText({ set, values = [], namespace = 'mtrelay', release = 'mtrelay' }: RenderOptions = {}): string {
  return helm(['template', release, chartDir, '--namespace', namespace, ...(set ? ['-f', valuesFile(set)] : []), ...values.flatMap((v) => ['--set', v])]);
}

export function render(options: RenderOptions = {}): KubeObject[] {
  return parseAllDocuments(renderText(options)).map((d) => d.toJS() as KubeObject | null).filter((o): o is KubeObject => o !== null);
}

export function find(objects: KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}
