// The first start of standalone mode with nothing configured: an example account, a DKIM
// key, a self-signed certificate, DNS records to publish, and a swaks command that works
// exactly as printed.
// @needs processes swaks
// @limit 60s
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compileManifestFolder } from '../../shared/config/manifest-folder.ts';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { tempDir } from '../helpers/resources.ts';

const state = tempDir('first-run');
const args = ['standalone', '--state', state, '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '0',
  '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--route', '*=127.0.0.1:9', '--example-domain', 'shop.example'];

async function startAndReadWelcome(): Promise<{ process: MtrelayProcess; welcome: string }> {
  const process = new MtrelayProcess(args);
  await process.started('standalone listening');
  for (let i = 0; i < 50 && !process.stderr.some((l) => /swaks|SMTP on/.test(l)); i++) await new Promise((r) => setTimeout(r, 100));
  return { process, welcome: process.stderr.join('\n') };
}

test('first start: example account, DNS records, and a swaks command that works as printed', async () => {
  const { process, welcome } = await startAndReadWelcome();
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
  } finally {
    await process.stop();
  }
});

test('a second start keeps the account it created', async () => {
  const before = readFileSync(path.join(state, 'resources', 'example.yaml'), 'utf8');
  const { process, welcome } = await startAndReadWelcome();
  await process.stop();
  assert.equal(readFileSync(path.join(state, 'resources', 'example.yaml'), 'utf8'), before);
  assert.match(welcome, /mtrelay standalone: SMTP on 127\.0\.0\.1:\d+ \(STARTTLS\)/);
});
