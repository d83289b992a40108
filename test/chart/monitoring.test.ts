// The chart's alerts and dashboards against the real tools and the real roles: promtool checks
// the rules and runs test/chart/alerts.promtool.yaml (each alert fires and resolves on
// synthetic series), every dashboard query parses, and every mtrelay metric the rules and
// dashboards use — with every label they match on — is served by the running roles (relay,
// deliverer, operator, tracker, dispatcher, inbound), the first ones having just handled a
// message: a renamed metric or label fails here.
// @needs chart kafka k8s processes
// @limit 120s
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { stringify } from 'yaml';
import { freePort } from '../kafka/broker.ts';
import { testKafka } from '../helpers/env.ts';
import { eventually } from '../helpers/eventually.ts';
import { DelivererProcess, MtrelayProcess, RelayProcess } from '../helpers/relay-process.ts';
import { writeNewTrackingKeys } from '../../shared/tracking/keys-file.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { filled } from '../inbound/report-corpus.ts';
import { OperatorCluster } from '../operator/cluster-fixture.ts';
import { chartDir, find, promtool, render } from './chart.ts';

interface RuleGroup { name: string; rules: { alert?: string; record?: string; expr: string }[] }
interface Panel { title: string; targets?: { expr: string }[] }

const dir = tempDir('monitoring');
const groups = (find(render({ set: 'cert-manager' }), 'PrometheusRule', 'mtrelay').spec as { groups: RuleGroup[] }).groups;
const dashboards = readdirSync(path.join(chartDir, 'files', 'grafana-dashboards')).map((file) => ({
  file, panels: (JSON.parse(readFileSync(path.join(chartDir, 'files', 'grafana-dashboards', file), 'utf8')) as { panels: Panel[] }).panels,
}));
/** Dashboard queries with their template variables filled in, as Grafana sends them. */
const dashboardQueries = dashboards.flatMap(({ file, panels }) => panels.flatMap((p) => (p.targets ?? []).map((t) => ({
  where: `${file}: ${p.title}`, expr: t.expr.replaceAll('$namespace', 'mtrelay').replaceAll('$account', '.*'),
}))));

function promtoolRun(args: string[]): string {
  try {
    return execFileSync(promtool, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

test('promtool accepts the rules, and each alert fires and resolves as its unit tests say', () => {
  writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups }));
  assert.match(promtoolRun(['check', 'rules', 'rules.yaml']), /SUCCESS: 23 rules found/);
  copyFileSync(path.join(import.meta.dirname, 'alerts.promtool.yaml'), path.join(dir, 'alerts.promtool.yaml'));
  assert.match(promtoolRun(['test', 'rules', 'alerts.promtool.yaml']), /SUCCESS/);
  // Every alert has a unit test and a runbook.
  const tested = readFileSync(path.join(dir, 'alerts.promtool.yaml'), 'utf8');
  const runbooks = readFileSync(path.join(chartDir, '..', '..', 'docs', 'operations.md'), 'utf8');
  for (const rule of groups.flatMap((g) => g.rules).filter((r) => r.alert)) {
    assert.match(tested, new RegExp(`alertname: ${rule.alert}\\b`), `${rule.alert} has no promtool test`);
    assert.match(runbooks, new RegExp(`^#### ${rule.alert}$`, 'm'), `${rule.alert} has no runbook in docs/operations.md`);
  }
});

test('every dashboard query is valid PromQL', () => {
  assert.ok(dashboardQueries.length >= 30, `${dashboardQueries.length} queries`);
  // promtool parses expressions in rule files: each query becomes a recording rule.
  const rules = dashboardQueries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr }));
  writeFileSync(path.join(dir, 'dashboards.yaml'), stringify({ groups: [{ name: 'dashboards', rules }] }));
  assert.match(promtoolRun(['check', 'rules', 'dashboards.yaml']), new RegExp(`SUCCESS: ${rules.length} rules found`));
});

describe('the metrics they use are served by the running roles', () => {
  let cluster: OperatorCluster;
  let operator: MtrelayProcess;
  let relay: RelayProcess;
  let deliverer: DelivererProcess;
  let tracker: MtrelayProcess;
  let dispatcher: MtrelayProcess;
  let inbound: MtrelayProcess;
  let sink: SmtpSink;
  const served = new Map<string, { type: string; labels: Set<string> }>();

  before(async () => {
    const key = newApiKey();
    const account = accountFolder(key);
    sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
    await sink.listen();
    cluster = await OperatorCluster.start('monitoring');
    operator = await cluster.startOperator('monitoring-operator');
    const prefix = `monitoring${Date.now()}`;
    relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--allow-auth-without-tls', '--topic-prefix', prefix] });
    deliverer = await DelivererProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--topic-prefix', prefix, '--group-id', `g-${prefix}`, '--route', `*=127.0.0.1:${sink.port}`] });
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
    const sent = await transport.sendMail({ from: 'sender@example.com', to: 'reader@gmail.com', subject: 'metrics', text: 'one message through every role' });
    const transmissionId = /OK (\d+)$/.exec(sent.response)![1]!;
    await sink.waitFor('reader@gmail.com');
    // The outcome is counted once it is in Kafka, a moment after the mailbox has the message.
    const deadline = Date.now() + 20_000;
    while (await deliverer.metric('mtrelay_deliverer_deliveries_total', { destination: 'gmail' }) < 1) {
      if (Date.now() > deadline) throw new Error('the delivery was never counted');
      await new Promise((r) => setTimeout(r, 100));
    }
    await operator.waitForLog((l) => l.msg === 'became the leader', 30_000);
    // A SendingDomain, so the operator serves its resources' conditions (the DMARC alert counts them).
    cluster.apply(['apiVersion: v1', 'kind: Namespace', 'metadata: {name: monitoring-acme}', '---', 'apiVersion: mtrelay.dev/v1alpha1', 'kind: SendingDomain',
      'metadata: {name: example-com, namespace: monitoring-acme}', 'spec: {domain: example.com}']);
    await eventually('the operator counts the domain\'s conditions', async () => (await operator.http('/metrics')).body.includes('condition="DMARCAligned"'), 30_000);
    const keys = path.join(tempDir('monitoring-keys'), 'keys');
    writeNewTrackingKeys(keys);
    const ops = ['--metrics-host', '127.0.0.1', '--metrics-port', '0'];
    tracker = new MtrelayProcess(['tracker', '--kafka', testKafka(), '--topic-prefix', prefix, '--host', '127.0.0.1', '--port', '0', '--tracking-keys', keys, ...ops]);
    dispatcher = new MtrelayProcess(['dispatcher', '--resources', account.dir, '--kafka', testKafka(), '--topic-prefix', prefix, '--group-id', `d-${prefix}`, ...ops]);
    inbound = new MtrelayProcess(['inbound', '--kafka', testKafka(), '--topic-prefix', prefix, '--bounce-domain', 'bounces.example.com', '--host', '127.0.0.1', '--port', '0', ...ops]);
    for (const [role, message] of [[tracker, 'tracker listening'], [dispatcher, 'dispatcher running'], [inbound, 'inbound listening']] as const) {
      role.metricsPort = (await role.started(message)).metricsPort as number;
    }
    // A complaint about that message, as a feedback loop sends it, so the inbound role serves its complaint series.
    const complaint = filled('arf-rfc5965-abuse.eml', { transmissionId, namespace: 'acme', rcpt: 'reader@gmail.com', fblAddress: 'fbl@bounces.example.com', bounceAddress: '' });
    const inboundPort = (inbound.logs.find((l) => l.msg === 'inbound listening')!.port) as number;
    await nodemailer.createTransport({ host: '127.0.0.1', port: inboundPort, secure: false, ignoreTLS: true })
      .sendMail({ envelope: { from: 'abuse@mailbox-provider.test', to: 'fbl@bounces.example.com' }, raw: complaint });
    for (const role of [relay, deliverer, operator, tracker, dispatcher, inbound]) {
      for (const line of (await role.http('/metrics')).body.split('\n')) {
        const type = /^# TYPE (\S+) (\S+)$/.exec(line);
        if (type) served.set(type[1]!, { type: type[2]!, labels: new Set() });
        const sample = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? /.exec(line);
        if (!sample) continue;
        const family = [...served.keys()].find((name) => sample[1] === name || new RegExp(`^${name}_(bucket|sum|count)$`).test(sample[1]!));
        for (const label of (sample[2] ?? '').matchAll(/([a-z_]+)="/g)) served.get(family ?? sample[1]!)?.labels.add(label[1]!);
      }
    }
  });
  after(async () => {
    await Promise.all([relay?.stop(), deliverer?.stop(), operator?.stop(), tracker?.stop(), dispatcher?.stop(), inbound?.stop()]);
    await sink?.close();
    await cluster?.stop();
  });

  test('every mtrelay metric and label in the rules and dashboards exists', async () => {
    // Labels Prometheus adds to every scraped series, and those histograms and quantiles add.
    const fromPrometheus = new Set(['namespace', 'pod', 'job', 'instance', 'container', 'component', 'le']);
    const uses = [...groups.flatMap((g) => g.rules.map((r) => ({ where: r.alert ? `alert ${r.alert}` : `record ${r.record}`, expr: r.expr }))), ...dashboardQueries];
    const missing: string[] = [];
    let checked = 0;
    for (const { where, expr } of uses) {
      // mtrelay_ metrics, not the names of recorded series (level:metric:operations) made of them.
      for (const [, name, matchers] of expr.matchAll(/(?<![\w:])(mtrelay_[a-z0-9_]+)(?![\w:])(?:\{([^}]*)\})?/g)) {
        const family = served.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, '');
        const metric = served.get(family);
        checked++;
        if (!metric) {
          missing.push(`${where}: ${name} is not served by any role`);
          continue;
        }
        for (const [, label] of (matchers ?? '').matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)) {
          if (!fromPrometheus.has(label!) && !metric.labels.has(label!)) missing.push(`${where}: ${family} has no label ${label} (it has ${[...metric.labels].join(', ') || 'none'})`);
        }
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(checked >= 60, `${checked} metric uses checked`);
    // The role gauge the "no relay ready" alert relies on says 1 for a ready relay.
    assert.equal(await relay.metric('mtrelay_ready', { role: 'relay' }), 1);
  });
});
