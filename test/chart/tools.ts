// The tools and third-party CRDs the chart tests use, built or fetched once into an ignored
// cache folder: helm and promtool from their Go modules, helm-unittest from the wrapper module
// in test/chart/tools (it needs a replace directive), the CRDs of prometheus-operator,
// cert-manager and KEDA from their Go module zips, and Strimzi's from its own CRD generator.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');

/**
 * helm v4: v3 left security support on 2026-11-11, so v4 is what an install runs today. The
 * unit tests run helm-unittest, which renders with helm v3's engine: the chart is checked by both.
 */
export const HELM_VERSION = 'v4.3.1';
export const PROMETHEUS_VERSION = 'v0.316.0';
export const HELM_UNITTEST_VERSION = 'v1.1.2';
export const STRIMZI_VERSION = '1.2.0';
const CRD_MODULES = {
  'prometheus-operator': { module: 'github.com/prometheus-operator/prometheus-operator@v0.85.0', files: ['example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml', 'example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml'] },
  'cert-manager': { module: 'github.com/cert-manager/cert-manager@v1.21.2', files: ['deploy/crds/cert-manager.io_certificates.yaml', 'deploy/crds/cert-manager.io_clusterissuers.yaml', 'deploy/crds/cert-manager.io_issuers.yaml'] },
  keda: { module: 'github.com/kedacore/keda/v2@v2.21.0', files: ['config/crd/bases/keda.sh_scaledobjects.yaml', 'config/crd/bases/keda.sh_triggerauthentications.yaml'] },
} as const;

export const chartToolsDir = path.join(repoRoot, '.cache', `chart-tools-helm-${HELM_VERSION}`);

export interface ChartTools {
  helm: string;
  helmUnittest: string;
  promtool: string;
  /** CRD files of the resources the chart renders for other operators (prometheus-operator, cert-manager, KEDA, Strimzi). */
  thirdPartyCrds: string[];
}

type Log = (line: string) => void;

function timed(log: Log, what: string, run: () => void): void {
  const started = Date.now();
  log(`${what}; the first time takes minutes`);
  run();
  log(`${what}: done in ${Math.round((Date.now() - started) / 1000)} s`);
}

const go = (args: string[], cwd = chartToolsDir) =>
  execFileSync('go', args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CGO_ENABLED: '0', GOBIN: chartToolsDir }, encoding: 'utf8' });

/** A Java of version 21 or newer for Strimzi's generator: JAVA_HOME, the one on PATH, or one beside it in /usr/lib/jvm. */
function java21(): string {
  const candidates = [
    ...(process.env.JAVA_HOME ? [path.join(process.env.JAVA_HOME, 'bin', 'java')] : []),
    'java',
    ...(existsSync('/usr/lib/jvm') ? readdirSync('/usr/lib/jvm').map((d) => path.join('/usr/lib/jvm', d, 'bin', 'java')) : []),
  ];
  for (const java of candidates) {
    const out = spawnSync(java, ['-version'], { encoding: 'utf8' });
    const major = Number(/version "(\d+)/.exec(out.stderr ?? '')?.[1] ?? 0);
    if (out.status === 0 && major >= 21) return java;
  }
  throw new Error(`Strimzi ${STRIMZI_VERSION}'s CRD generator needs Java 21 or newer (tried ${candidates.join(', ')}); install one (e.g. Temurin 25) and set JAVA_HOME`);
}

function strimziCrds(log: Log): string[] {
  const dir = path.join(chartToolsDir, `strimzi-${STRIMZI_VERSION}`);
  const out = ['kafkatopics', 'kafkausers'].map((name) => path.join(dir, `${name}.kafka.strimzi.io.yaml`));
  if (out.every(existsSync)) return out;
  timed(log, `generating Strimzi ${STRIMZI_VERSION} CRDs (KafkaTopic, KafkaUser) with its CRD generator`, () => {
    const libs = path.join(dir, 'libs');
    execFileSync('mvn', ['-q', '-B', '-f', path.join(here, 'strimzi', 'pom.xml'), 'dependency:copy-dependencies', `-Dstrimzi.version=${STRIMZI_VERSION}`, `-DoutputDirectory=${libs}`],
      { stdio: ['ignore', 'inherit', 'inherit'] });
    execFileSync(java21(), ['-cp', `${libs}/*`, 'io.strimzi.crdgenerator.CrdGenerator', '--yaml',
      `io.strimzi.api.kafka.model.topic.KafkaTopic=${out[0]}`, `io.strimzi.api.kafka.model.user.KafkaUser=${out[1]}`], { stdio: ['ignore', 'inherit', 'inherit'] });
  });
  return out;
}

/** Paths of the tools and CRDs, building or fetching whatever is missing. */
export function ensureChartTools(log: Log = (l) => process.stderr.write(`${l}\n`)): ChartTools {
  mkdirSync(chartToolsDir, { recursive: true });
  const tools = { helm: path.join(chartToolsDir, 'helm'), helmUnittest: path.join(chartToolsDir, 'helm-unittest'), promtool: path.join(chartToolsDir, 'promtool') };
  const install = (pkg: string, ldflags = '') => go(['install', '-trimpath', ...(ldflags ? ['-ldflags', ldflags] : []), pkg]);
  if (!existsSync(tools.helm)) {
    // Without the version stamp helm calls itself "v4.3+unreleased".
    timed(log, `building helm ${HELM_VERSION} from Go modules`, () => install(`helm.sh/helm/v4/cmd/helm@${HELM_VERSION}`, `-X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}`));
  }
  if (!existsSync(tools.promtool)) {
    timed(log, `building promtool ${PROMETHEUS_VERSION} from Go modules`, () => install(`github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}`));
  }
  if (!existsSync(tools.helmUnittest)) {
    timed(log, `building helm-unittest ${HELM_UNITTEST_VERSION} from test/chart/tools`, () =>
      go(['build', '-trimpath', '-o', tools.helmUnittest, 'github.com/helm-unittest/helm-unittest/cmd/helm-unittest'], path.join(here, 'tools')));
  }
  const thirdPartyCrds: string[] = [];
  for (const { module, files } of Object.values(CRD_MODULES)) {
    const { Dir } = JSON.parse(go(['mod', 'download', '-json', module])) as { Dir: string };
    thirdPartyCrds.push(...files.map((f) => path.join(Dir, f)));
  }
  thirdPartyCrds.push(...strimziCrds(log));
  return { ...tools, thirdPartyCrds };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const tools = ensureChartTools();
  for (const [name, file] of Object.entries(tools)) process.stdout.write(`${name}: ${Array.isArray(file) ? file.join('\n  ') : file}\n`);
}
