// Standalone with its state on a small file system the test mounts (tmpfs, 24 MiB) and then
// fills: no 250 for a message that is not on disk, a clear 452 4.3.1 instead, and once space
// returns the same process takes and delivers mail again, without a restart. Every message
// answered 250, before, during or after, reaches the mailbox.
// @needs processes
// @limit 120s
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { freePort } from '../kafka/broker.ts';

const key = newApiKey();
const account = accountFolder(key);
const mount = tempDir('small-fs');
const filler = path.join(mount, 'filler');
let sink: SmtpSink;
let standalone: MtrelayProcess;
let port = 0;

before(async () => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a small tmpfs and must run as root (as CI does)');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mount]);
  mkdirSync(path.join(mount, 'state'));
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  standalone = new MtrelayProcess(['standalone', '--state', path.join(mount, 'state'), '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
    '--route', `*=127.0.0.1:${sink.port}`, '--retry-delays', '1s', '--tls-policy', '*=opportunistic']);
  port = ((await standalone.started('standalone listening')).ports as { submission: number }).submission;
});
after(async () => {
  await standalone?.stop();
  await sink?.close();
  try { execFileSync('umount', [mount]); } catch { /* not mounted */ }
});

/** One message through one session; the reply to its final dot. */
async function send(subject: string, bodyBytes: number): Promise<string> {
  const client = await RawSmtp.connect(port);
  try {
    await client.reply();
    assert.match((await client.login(key)) ?? '', /^235 /);
    assert.match((await client.command('MAIL FROM:<sender@example.com>')) ?? '', /^250 /);
    assert.match((await client.command('RCPT TO:<someone@recipient.test>')) ?? '', /^250 /);
    assert.match((await client.command('DATA')) ?? '', /^354 /);
    const body = `${'x'.repeat(76)}\r\n`.repeat(Math.ceil(bodyBytes / 78));
    return (await client.command(`From: sender@example.com\r\nSubject: ${subject}\r\n\r\n${body}.`)) ?? '(closed)';
  } finally {
    client.close();
  }
}

/** Writes zeros until the file system refuses another byte. */
function fill(): void {
  const fd = openSync(filler, 'w');
  try {
    for (const chunk of [1024 * 1024, 64 * 1024, 4096, 512]) {
      const zeros = Buffer.alloc(chunk);
      for (;;) {
        try {
          writeSync(fd, zeros);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

const delivered = (subject: string) => sink.received.some((r) => r.message.toString('latin1').includes(`\r\nSubject: ${subject}\r\n`));

async function untilDelivered(subjects: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!subjects.every(delivered)) {
    assert.ok(Date.now() < deadline, `not delivered: ${subjects.filter((s) => !delivered(s)).join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('disk full: 452 4.3.1 and never a 250 that is not on disk; space back: mail flows again, nothing answered 250 is lost', async (t) => {
  const accepted: string[] = [];
  for (let i = 0; i < 3; i++) {
    assert.match(await send(`before-${i}`, 2000), /^250 2\.0\.0 OK \d+$/);
    accepted.push(`before-${i}`);
  }
  await untilDelivered(accepted);

  fill();
  const replies: string[] = [];
  // Small bodies go to SQLite, large ones (256 KiB and up) to body files: both paths meet the full disk.
  for (const [i, size] of [2000, 2000, 300 * 1024, 300 * 1024, 2000].entries()) {
    const reply = await send(`during-${i}`, size);
    replies.push(reply);
    if (reply.startsWith('250')) accepted.push(`during-${i}`); // a write that still fit is on disk: it must arrive
    else assert.equal(reply, '452 4.3.1 Message not queued: insufficient system storage; try again later');
  }
  t.diagnostic(`while full: ${replies.join(' | ')}`);
  assert.ok(replies.some((r) => r.startsWith('452')), `the full disk was never met: ${replies.join(' | ')}`);
  assert.equal(standalone.child.exitCode, null, 'standalone is still running');

  rmSync(filler);
  const pid = standalone.child.pid;
  const deadline = Date.now() + 15_000;
  let after = '';
  for (let i = 0; !after.startsWith('250'); i++) {
    assert.ok(Date.now() < deadline, `no 250 within 15 s of space returning: ${after}`);
    after = await send(`after-${i}`, 2000);
    if (after.startsWith('250')) accepted.push(`after-${i}`);
    else await new Promise((r) => setTimeout(r, 250));
  }
  assert.match(await send('after-large', 300 * 1024), /^250 /);
  accepted.push('after-large');
  await untilDelivered(accepted);
  assert.equal(standalone.child.pid, pid, 'the same process, no restart');
});
