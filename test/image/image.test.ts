// The image, built from the real Dockerfile and run as a cluster runs it: a numeric non-root
// user, a read-only root filesystem, every role from one entrypoint. Through running containers
// a standalone send reaches a mailbox, a relay and a deliverer deliver around the broker, and
// SIGTERM reaches node as PID 1 so the relay drains and exits 0.
// @needs image kafka processes swaks
// @limit 240s
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { freePort } from '../kafka/broker.ts';
import { testKafka } from '../helpers/env.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { submitArgs, swaks } from '../helpers/swaks.ts';
import { buildImage, imageSize, podman, podmanRun } from './containers.ts';

const IMAGE = 'localhost/mtrelay:test';
const containers: string[] = [];
let sink: SmtpSink;

before(async () => {
  buildImage(IMAGE);
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
});
after(async () => {
  for (const name of containers) podmanRun(['rm', '--force', name]);
  await sink?.close();
});

/** A detached container as the chart runs it: read-only root, /tmp in memory, host network (loopback tests). */
function run(name: string, args: string[], volumes: string[] = []): string {
  const unique = `${name}-${Date.now()}`;
  containers.push(unique);
  podman(['run', '--detach', '--name', unique, '--network', 'host', '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges', ...volumes.flatMap((v) => ['--volume', v]), IMAGE, ...args]);
  return unique;
}

async function readyWithin(metricsPort: number, timeoutMs: number, container: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    const status = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not ready within ${timeoutMs} ms; logs:\n${podmanRun(['logs', container]).stdout}${podmanRun(['logs', container]).stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('one image: under 200 MB, a numeric non-root user, no HEALTHCHECK, OCI labels, every role behind the entrypoint', () => {
  const size = imageSize(IMAGE);
  assert.ok(size < 200 * 1024 * 1024, `${(size / 1024 / 1024).toFixed(0)} MiB`);
  const [config] = JSON.parse(podman(['image', 'inspect', IMAGE])) as { Config: { User: string; Healthcheck?: unknown; Labels: Record<string, string>; Entrypoint: string[]; Volumes: Record<string, object>; StopSignal?: string } }[];
  assert.match(config!.Config.User, /^[1-9]\d*:[1-9]\d*$/, 'a numeric user and group, not root');
  assert.equal(config!.Config.Healthcheck, undefined, 'Kubernetes probes do that');
  assert.equal(config!.Config.Labels['org.opencontainers.image.title'], 'mtrelay');
  assert.equal(config!.Config.Labels['org.opencontainers.image.revision'], 'test');
  assert.deepEqual(Object.keys(config!.Config.Volumes).sort(), ['/tmp', '/var/lib/mtrelay']);
  for (const role of ['relay', 'deliverer', 'standalone', 'operator', 'tracker', 'dispatcher', 'inbound', 'api']) {
    const help = podmanRun(['run', '--rm', '--network', 'none', '--read-only', IMAGE, role, '--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`^Usage: mtrelay ${role} \\[options\\]`, 'm'));
  }
  const shell = podmanRun(['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', IMAGE, '-c', 'true']);
  assert.notEqual(shell.status, 0, 'the runtime image has no shell');
});

test('standalone in the image, read-only root and a state volume: swaks sends, the mailbox receives', async () => {
  const state = tempDir('image-state');
  chmodSync(state, 0o777); // the image's user is 65532
  const [smtp, metrics] = [await freePort(), await freePort()];
  const name = run('standalone', ['standalone', '--host', '127.0.0.1', '--port', String(smtp), '--alt-port', '-1', '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '0',
    '--metrics-host', '127.0.0.1', '--metrics-port', String(metrics), '--route', `*=127.0.0.1:${sink.port}`, '--example-domain', 'shop.example'],
  [`${state}:/var/lib/mtrelay`]);
  await readyWithin(metrics, 30_000, name);
  const key = /--auth-password (\S+)/.exec(podmanRun(['logs', name]).stderr)?.[1];
  assert.ok(key, 'the first start prints the key of its example account');
  const sent = await swaks(['--server', `127.0.0.1:${smtp}`, '--from', 'you@shop.example', '--to', 'boxed@example.org',
    '--auth', 'LOGIN', '--auth-user', 'smtp_mt_injection', '--auth-password', key, '-tls']);
  assert.match(sent.dataReply ?? '', /^250 2\.0\.0 OK \d+$/, sent.output);
  const [received] = await sink.waitFor('boxed@example.org');
  assert.match(received!.message.toString(), /^DKIM-Signature: .*d=shop\.example;/m);
});

test('relay and deliverer in two containers around the broker deliver; SIGTERM drains the relay and it exits 0', async () => {
  const key = newApiKey();
  const account = accountFolder(key);
  chmodSync(account.dir, 0o755);
  const prefix = `image${Date.now()}`;
  const [smtp, relayMetrics, delivererMetrics] = [await freePort(), await freePort(), await freePort()];
  const relay = run('relay', ['relay', '--resources', '/config', '--kafka', testKafka(), '--topic-prefix', prefix, '--host', '127.0.0.1',
    '--port', String(smtp), '--alt-port', '-1', '--smtps-port', '-1', '--allow-auth-without-tls',
    '--metrics-host', '127.0.0.1', '--metrics-port', String(relayMetrics)], [`${account.dir}:/config:ro`]);
  const deliverer = run('deliverer', ['deliverer', '--resources', '/config', '--kafka', testKafka(), '--topic-prefix', prefix, '--group-id', `g-${prefix}`,
    '--route', `*=127.0.0.1:${sink.port}`, '--metrics-host', '127.0.0.1', '--metrics-port', String(delivererMetrics)], [`${account.dir}:/config:ro`]);
  const relayReadyMs = await readyWithin(relayMetrics, 30_000, relay);
  await readyWithin(delivererMetrics, 30_000, deliverer);
  process.stderr.write(`relay container ready ${relayReadyMs} ms after the first probe\n`);

  const sent = await swaks(submitArgs({ port: smtp, key, tls: 'none', to: 'contained@recipient.test' }));
  assert.match(sent.dataReply ?? '', /^250 2\.0\.0 OK \d+$/, sent.output);
  await sink.waitFor('contained@recipient.test');

  const stopping = Date.now();
  podman(['stop', '--time', '25', relay]);
  const tookMs = Date.now() - stopping;
  const state = JSON.parse(podman(['inspect', '--format', '{{json .State}}', relay])) as { ExitCode: number };
  assert.equal(state.ExitCode, 0, podmanRun(['logs', relay]).stdout);
  assert.ok(tookMs < 20_000, `stopped after ${tookMs} ms: SIGTERM did not reach node (podman waited to kill it)`);
  assert.match(podmanRun(['logs', relay]).stdout, /"msg":"relay stopped"/);
});
