// The relay follows its resources folder without a restart: keys added, removed or disabled
// take effect within seconds, a problem stays with its own file or resource (a broken file
// keeps its resources, never its Secrets; a key without its Secret fails closed), and
// certificates are swapped when their files change.
// @needs kafka processes openssl
// @limit 90s
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

/** An ApiKey and its Secret as two manifests, to put in two files. */
function keyAndSecret(name: string, apiKey: string, options: Parameters<typeof apiKeyYaml>[3] = {}): [string, string] {
  const [resource, secret] = apiKeyYaml('acme', name, apiKey, options).split('---\n') as [string, string];
  return [resource, secret];
}

test('a resource with a problem is left out, logged once and counted; the rest of the folder applies', async () => {
  const errorsBefore = await relay.metric('mtrelay_config_reload_errors_total');
  const other = newApiKey();
  account.write('broken.yaml', 'apiVersion: mtrelay.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: x, namespace: acme}\nspec: {permissions: [fly]}\n');
  account.write('other.yaml', apiKeyYaml('acme', 'other', other));
  await untilAuth(other, '235');
  const log = await relay.waitForLog((l) => l.msg === 'resource left out of the config' && JSON.stringify(l).includes('broken.yaml'), 5000);
  assert.match(String(log.problem), /^broken\.yaml: ApiKey acme\/x: spec\.permissions\[0\]: must be equal to one of the allowed values/);
  assert.match((await authReply(key)) ?? '', /^235 /);
  assert.ok(await relay.metric('mtrelay_config_reload_errors_total') > errorsBefore);
  account.remove('broken.yaml');
  account.remove('other.yaml');
  await untilAuth(other, '535');
});

test('a file that does not parse never holds back a revocation in another file', async () => {
  const revoked = newApiKey();
  account.write('revoked.yaml', apiKeyYaml('acme', 'revoked', revoked));
  await untilAuth(revoked, '235');
  account.write('zz-broken.yaml', 'kind: [unclosed\n');
  await relay.waitForLog((l) => l.msg === 'manifest cannot be read; its resources stay as they last were, its Secrets are not used' && String(l.problem).startsWith('zz-broken.yaml: '), 5000);
  account.write('revoked.yaml', apiKeyYaml('acme', 'revoked', revoked, { disabled: true }));
  await untilAuth(revoked, '535');
  account.remove('revoked.yaml');
  account.remove('zz-broken.yaml');
});

test('a file that stops parsing keeps its own resources as they last were, but not its Secrets', async () => {
  const kept = newApiKey();
  const [keptKey, keptSecret] = keyAndSecret('kept', kept);
  account.write('kept-key.yaml', keptKey);
  account.write('kept-secret.yaml', keptSecret);
  const inline = newApiKey();
  account.write('inline.yaml', apiKeyYaml('acme', 'inline', inline));
  await untilAuth(kept, '235');
  await untilAuth(inline, '235');
  // The ApiKey's own file breaks: the ApiKey stays as it was, and its Secret (in a good file) still counts.
  account.write('kept-key.yaml', `${keptKey}\n  : [broken`);
  // A file holding a key and its Secret breaks: the key stays, the Secret is not used: fail closed.
  account.write('inline.yaml', `${apiKeyYaml('acme', 'inline', inline)}\n  : [broken`);
  await untilAuth(inline, '535');
  assert.match((await authReply(kept)) ?? '', /^235 /, 'the ApiKey of a broken file keeps its last good state');
  account.write('inline.yaml', apiKeyYaml('acme', 'inline', inline));
  await untilAuth(inline, '235');
  for (const file of ['kept-key.yaml', 'kept-secret.yaml', 'inline.yaml']) account.remove(file);
  await untilAuth(kept, '535');
});

test('a key whose Secret is deleted or invalid stops authenticating at once; other keys go on', async () => {
  const doomed = newApiKey();
  const [doomedKey, doomedSecret] = keyAndSecret('doomed-secret', doomed);
  account.write('doomed-key.yaml', doomedKey);
  account.write('doomed-secret.yaml', doomedSecret);
  await untilAuth(doomed, '235');
  account.remove('doomed-secret.yaml');
  await untilAuth(doomed, '535');
  await relay.waitForLog((l) => l.msg === 'resource left out of the config' && /ApiKey acme\/doomed-secret: Secret acme\/doomed-secret-key not found/.test(String(l.problem)), 5000);
  account.write('doomed-secret.yaml', doomedSecret);
  await untilAuth(doomed, '235');
  // Invalid: the Secret no longer holds the key under `apiKey`.
  account.write('doomed-secret.yaml', doomedSecret.replace('apiKey:', 'apikey:'));
  await untilAuth(doomed, '535');
  assert.match((await authReply(key)) ?? '', /^235 /, 'the account\'s other key is untouched');
  account.remove('doomed-key.yaml');
  account.remove('doomed-secret.yaml');
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
