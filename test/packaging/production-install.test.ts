// What an image build does: `npm ci --omit=dev` into a copy of the project. From that copy,
// with production dependencies only, every role's CLI starts, the launcher refuses a Node.js
// older than 24 with a clear message, and a standalone send reaches a mailbox.
// @needs processes swaks
// @limit 90s
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { freePort, repoRoot } from '../kafka/broker.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { swaks } from '../helpers/swaks.ts';

const copy = tempDir('production');
const node24 = path.dirname(process.execPath);
/** PATH with this run's Node.js 24 first, as an image has it. */
const withNode24 = { PATH: `${node24}:${process.env.PATH}` };
const ROLES = ['relay', 'deliverer', 'standalone', 'operator', 'tracker', 'dispatcher', 'inbound', 'api'];

before(() => {
  // The project's files as a clean clone has them (tracked, and new files not ignored).
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const file of files) {
    if (!existsSync(path.join(repoRoot, file))) continue; // deleted in the work tree
    mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
    copyFileSync(path.join(repoRoot, file), path.join(copy, file));
  }
  chmodSync(path.join(copy, 'bin/mtrelay'), 0o755);
  execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: copy, env: { ...process.env, ...withNode24 }, stdio: 'pipe' });
});

test('npm ci --omit=dev installs no development package', () => {
  for (const dev of ['typescript', 'node', 'fast-check']) {
    assert.ok(!existsSync(path.join(copy, 'node_modules', dev)), `${dev} is a devDependency and must not be installed`);
  }
  assert.ok(existsSync(path.join(copy, 'node_modules', 'smtp-server')));
});

test('every role\'s --help runs from the production install', () => {
  for (const role of ROLES) {
    const run = spawnSync(path.join(copy, 'bin/mtrelay'), [role, '--help'], { env: { ...process.env, ...withNode24 }, encoding: 'utf8' });
    assert.equal(run.status, 0, `${role} --help: ${run.stderr}`);
    assert.match(run.stdout, new RegExp(`^Usage: mtrelay ${role} \\[options\\]`, 'm'));
  }
});

test('the launcher refuses a Node.js older than 24 and says what to do', () => {
  const oldNode = tempDir('old-node');
  writeFileSync(path.join(oldNode, 'node'), '#!/bin/sh\ncase "$1" in -p) echo 20 ;; --version) echo v20.20.2 ;; *) exit 3 ;; esac\n', { mode: 0o755 });
  const run = spawnSync(path.join(copy, 'bin/mtrelay'), ['relay', '--help'], { env: { ...process.env, PATH: `${oldNode}:/usr/bin:/bin` }, encoding: 'utf8' });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /^mtrelay: Node\.js 24 or newer is needed; .*node is v20\.20\.2\. Install Node\.js 24, or run 'npm ci'/m);
});

test('standalone from the production install accepts a message with swaks and delivers it', async () => {
  const sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  const standalone = new MtrelayProcess(['standalone', '--state', tempDir('production-state'), '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1',
    '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--route', `*=127.0.0.1:${sink.port}`, '--example-domain', 'shop.example'],
  withNode24, [path.join(copy, 'bin/mtrelay')]);
  try {
    const ready = await standalone.started('standalone listening');
    const port = (ready.ports as { submission: number }).submission;
    for (let i = 0; i < 50 && !standalone.stderr.some((l) => l.includes('--auth-password')); i++) await new Promise((r) => setTimeout(r, 100));
    const key = /--auth-password (\S+)/.exec(standalone.stderr.join('\n'))?.[1];
    assert.ok(key, `the welcome prints the key: ${standalone.stderr.join('\n')}`);
    const sent = await swaks(['--server', `127.0.0.1:${port}`, '--from', 'you@shop.example', '--to', 'someone@example.org',
      '--auth', 'LOGIN', '--auth-user', 'smtp_mt_injection', '--auth-password', key, '-tls']);
    assert.match(sent.dataReply ?? '', /^250 2\.0\.0 OK \d+$/, sent.output);
    const [received] = await sink.waitFor('someone@example.org');
    assert.match(received!.message.toString(), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=shop\.example;/m);
  } finally {
    await standalone.stop();
    await sink.close();
  }
});
