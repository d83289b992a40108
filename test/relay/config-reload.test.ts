// The relay follows its resources folder without a restart: keys added, removed or disabled
// take effect within seconds, a broken folder keeps the last good config, and certificates
// are swapped when their files change.
// @needs kafka processes openssl
// @limit 45s
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { testKafka } from '../helpers/env.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey, tempDir } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';
import { createTestCa } from '../helpers/tls.ts';

const key = newApiKey();
const account = accountFolder(key);
const ca = createTestCa();
const first = ca.issue('first', ['localhost', '127.0.0.1']);
const second = ca.issue('second', ['localhost', '127.0.0.1']);
const tlsDir = tempDir('tls');
const certFile = path.join(tlsDir, 'tls.crt');
const keyFile = path.join(tlsDir, 'tls.key');
copyFileSync(first.cert, certFile);
copyFileSync(first.key, keyFile);
let relay: RelayProcess;

before(async () => {
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), tls: { cert: certFile, key: keyFile },
    args: ['--allow-auth-without-tls', '--auth-slow-after', '1000', '--auth-block-after', '2000'] });
});
after(async () => {
  await relay?.stop();
});

async function authReply(apiKey: string): Promise<string | undefined> {
  const client = await RawSmtp.connect(relay.ports.submission);
  await client.reply();
  const reply = await client.login(apiKey);
  client.close();
  return reply;
}

/** Polls until AUTH gives the expected reply code; returns how long that took. */
async function untilAuth(apiKey: string, code: string, timeoutMs = 5000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const reply = await authReply(apiKey);
    if (reply?.startsWith(code)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`AUTH still answers "${reply}" after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a key added, disabled, re-enabled and removed takes effect within 5 seconds', async () => {
  const added = newApiKey();
  assert.match((await authReply(added)) ?? '', /^535 5\.7\.8 Sorry\./);
  account.write('added.yaml', apiKeyYaml('acme', 'added', added));
  await untilAuth(added, '235');
  account.write('added.yaml', apiKeyYaml('acme', 'added', added, { disabled: true }));
  await untilAuth(added, '535');
  account.write('added.yaml', apiKeyYaml('acme', 'added', added, { disabled: false }));
  await untilAuth(added, '235');
  account.remove('added.yaml');
  const took = await untilAuth(added, '535');
  assert.ok(took < 5000, `removal took ${took} ms`);
  assert.ok(await relay.metric('mtrelay_config_generation') >= 5);
});

test('an expired key no longer authenticates', async () => {
  const expiring = newApiKey();
  account.write('expiring.yaml', apiKeyYaml('acme', 'expiring', expiring, { expiresAt: new Date(Date.now() + 3000).toISOString() }));
  await untilAuth(expiring, '235');
  await untilAuth(expiring, '535', 8000);
  account.remove('expiring.yaml');
});

test('a session authenticated with a key that is then removed cannot start another transaction', async () => {
  const doomed = newApiKey();
  account.write('doomed.yaml', apiKeyYaml('acme', 'doomed', doomed));
  await untilAuth(doomed, '235');
  const client = await RawSmtp.connect(relay.ports.submission);
  await client.reply();
  assert.match((await client.login(doomed)) ?? '', /^235 /);
  account.remove('doomed.yaml');
  await untilAuth(doomed, '535');
  assert.equal(await client.command('MAIL FROM:<sender@example.com>'), '530 5.7.0 Authentication required: the API key of this session is no longer valid');
  client.close();
});

test('a broken manifest keeps the last good config and is counted', async () => {
  const errorsBefore = await relay.metric('mtrelay_config_reload_errors_total');
  account.write('broken.yaml', 'apiVersion: mtrelay.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: x, namespace: acme}\nspec: {permissions: [fly]}\n');
  await relay.waitForLog((l) => l.msg === 'config folder is broken; keeping the last good config' && JSON.stringify(l).includes('broken.yaml'), 5000);
  const log = relay.logs.find((l) => JSON.stringify(l).includes('broken.yaml'))!;
  assert.match(JSON.stringify(log), /ApiKey acme\/x: spec\.permissions\[0\]: must be equal to one of the allowed values/);
  assert.match((await authReply(key)) ?? '', /^235 /, 'the last good config is still in force');
  assert.ok(await relay.metric('mtrelay_config_reload_errors_total') > errorsBefore);
  account.write('broken.yaml', ': not yaml [');
  await relay.waitForLog((l) => l.msg === 'config folder is broken; keeping the last good config' && JSON.stringify(l).includes('broken.yaml:'), 5000);
  assert.match((await authReply(key)) ?? '', /^235 /);
  account.remove('broken.yaml');
});

test('a new certificate in the files is served without a restart', async () => {
  const serial = async () => {
    const client = await RawSmtp.connect(relay.ports.submission);
    await client.reply();
    await client.command('EHLO client.test');
    await client.startTls(readFileSync(ca.caCert));
    const peer = (client.socket as tls.TLSSocket).getPeerCertificate();
    client.close();
    return peer.serialNumber;
  };
  assert.equal(await serial(), '01');
  copyFileSync(second.key, keyFile);
  copyFileSync(second.cert, certFile);
  const deadline = Date.now() + 10_000;
  while ((await serial()) !== '02') {
    assert.ok(Date.now() < deadline, 'the new certificate was not served within 10 s');
    await new Promise((r) => setTimeout(r, 200));
  }
});
