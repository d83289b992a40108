// The first start of standalone mode with nothing configured: an example account, a DKIM
// key, a self-signed certificate, DNS records to publish, and a swaks command that works
// exactly as printed.
// @needs processes swaks
// @limit 30s
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { keyBits, newApiKeyValue, sendingDomainRecords } from '../../shared/config/credentials.ts';
import { compileManifestFolder } from '../../shared/config/manifest-folder.ts';
import { API_KEY_SECRET_KEY, DEFAULT_DKIM_KEY_BITS, DEFAULT_DKIM_SELECTOR, dkimSecretName, generatedApiKeySecretName } from '../../shared/config/secret-names.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { tempDir } from '../helpers/resources.ts';

const args = (state: string) => ['standalone', '--state', state, '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '0',
  '--tracker-port', '0', '--api-port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--route', '*=127.0.0.1:9', '--example-domain', 'shop.example'];

async function startAndReadWelcome(state: string): Promise<{ process: MtrelayProcess; welcome: string }> {
  const process = new MtrelayProcess(args(state));
  await process.started('standalone listening');
  for (let i = 0; i < 50 && !process.stderr.some((l) => /swaks|SMTP on/.test(l)); i++) await new Promise((r) => setTimeout(r, 100));
  return { process, welcome: process.stderr.join('\n') };
}

test('first start: example account, DNS records, and a swaks command that works as printed', async () => {
  const state = tempDir('first-run');
  const { process, welcome } = await startAndReadWelcome(state);
  try {
    const swaks = welcome.slice(welcome.indexOf('  swaks ')).split('\n\n')[0]!;
    assert.match(swaks, /--from you@shop\.example/);
    const output = execFileSync('sh', ['-c', `${swaks} --hide-informational`], { encoding: 'utf8' });
    assert.match(output, /^<~ +250 2\.0\.0 OK \d+$/m, output);

    const config = await compileManifestFolder(path.join(state, 'resources'));
    const domain = config.namespaces.default!.domains['shop.example']!;
    const published = /mtrelay\._domainkey\.shop\.example {2}TXT {2}"v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)"/.exec(welcome)![1];
    const actual = createPublicKey(createPrivateKey(domain.dkimPrivateKey!)).export({ type: 'spki', format: 'der' }).toString('base64');
    assert.equal(published, actual, 'the printed DKIM record matches the generated key');
    assert.match(readFileSync(path.join(state, 'tls', 'tls.crt'), 'utf8'), /^-----BEGIN CERTIFICATE-----/);

    // Made as the operator makes them: a 2048-bit key, a 32-byte API key in the Secret named as a generated one.
    assert.equal(keyBits(domain.dkimPrivateKey!), DEFAULT_DKIM_KEY_BITS);
    const manifests = parseAllDocuments(readFileSync(path.join(state, 'resources', 'example.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec?: object; stringData?: Record<string, string> });
    const apiKey = manifests.find((m) => m.kind === 'ApiKey')!;
    assert.deepEqual(apiKey.spec, { permissions: ['smtp/send'] }, 'no secretRef: the key is where the operator would generate it');
    const keySecret = manifests.find((m) => m.kind === 'Secret' && m.metadata.name === generatedApiKeySecretName(apiKey.metadata.name))!;
    assert.equal(keySecret.stringData![API_KEY_SECRET_KEY]!.length, newApiKeyValue().length);
    assert.ok(manifests.some((m) => m.kind === 'Secret' && m.metadata.name === dkimSecretName('shop-example')));
    for (const record of sendingDomainRecords({ domain: 'shop.example', selector: DEFAULT_DKIM_SELECTOR, publicKeyData: actual, spfMechanism: 'a:localhost' })) {
      assert.ok(welcome.includes(`  ${record.name}  ${record.type}  "${record.value}"`), `${record.purpose} record printed as the operator publishes it`);
    }
  } finally {
    await process.stop();
  }
});

test('a second start keeps the account it created', async () => {
  const state = tempDir('second-run');
  await (await startAndReadWelcome(state)).process.stop();
  const before = readFileSync(path.join(state, 'resources', 'example.yaml'), 'utf8');
  const { process, welcome } = await startAndReadWelcome(state);
  await process.stop();
  assert.equal(readFileSync(path.join(state, 'resources', 'example.yaml'), 'utf8'), before);
  assert.match(welcome, /mtrelay standalone: SMTP on 127\.0\.0\.1:\d+ \(STARTTLS\)/);
});
