// The relay's TLS as a scanner sees it: testssl.sh against the implicit-TLS port (465) and
// STARTTLS on the submission port (587). No SSLv2, SSLv3, TLS 1.0 or 1.1; no NULL, anonymous,
// export, low, RC4 or 3DES ciphers; no insecure renegotiation. A client that offers only
// TLS 1.0 or 1.1 is refused by the relay itself (not by its own library's defaults).
// @needs kafka processes openssl testssl
// @limit 240s
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { testKafka } from '../helpers/env.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';
import { createTestCa } from '../helpers/tls.ts';

const ca = createTestCa();
const cert = ca.issue('relay', ['localhost', '127.0.0.1']);
let relay: RelayProcess;

before(async () => {
  relay = await RelayProcess.start({ resources: accountFolder(newApiKey()).dir, kafka: testKafka(), tls: cert });
});
after(async () => {
  await relay?.stop();
});

interface Finding { id: string; severity: string; finding: string }

/** testssl.sh's findings (its JSON file) for the given target and flags. */
async function scan(target: string, flags: string[]): Promise<Map<string, Finding>> {
  const json = path.join(tempDir('testssl'), 'scan.json');
  await promisify(execFile)('testssl', ['--quiet', '--color', '0', '--warnings', 'batch', '--jsonfile', json, '--protocols', '--std', '--renegotiation', ...flags, target],
    { timeout: 180_000, maxBuffer: 16 * 1024 * 1024 }).catch((error: { code?: number }) => {
    // testssl.sh exits with the number of findings above a threshold; the JSON file is what counts.
    if (typeof error.code !== 'number') throw error;
  });
  const findings = JSON.parse(readFileSync(json, 'utf8')) as Finding[];
  return new Map(findings.map((f) => [f.id, f]));
}

const SUMMARY = ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3', 'cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW',
  'cipherlist_3DES_IDEA', 'cipherlist_AVERAGE', 'cipherlist_STRONG', 'secure_renego', 'secure_client_renego'];

function assertHardened(findings: Map<string, Finding>, where: string): void {
  const finding = (id: string) => findings.get(id)?.finding ?? assert.fail(`${where}: testssl.sh reported no "${id}"; it reported ${[...findings.keys()].join(', ')}`);
  for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) assert.match(finding(id), /^not offered/, `${where}: ${id}`);
  assert.match(finding('TLS1_2'), /^offered/, `${where}: TLS 1.2`);
  assert.match(finding('TLS1_3'), /^offered/, `${where}: TLS 1.3`);
  for (const id of ['cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW', 'cipherlist_3DES_IDEA']) {
    assert.match(finding(id), /^not offered/, `${where}: ${id}`);
  }
  assert.match(finding('secure_renego'), /^supported/, `${where}: secure renegotiation`);
  assert.match(finding('secure_client_renego'), /^not vulnerable/, `${where}: client-initiated renegotiation`);
}

test('testssl.sh on 465 (implicit TLS) and on 587 (STARTTLS): only TLS 1.2 and 1.3, no weak ciphers, no insecure renegotiation', async (t) => {
  for (const [where, target, flags] of [['port 465', `127.0.0.1:${relay.ports.smtps}`, []], ['port 587', `127.0.0.1:${relay.ports.submission}`, ['--starttls', 'smtp']]] as const) {
    const findings = await scan(target, [...flags]);
    t.diagnostic(`${where}: ${SUMMARY.map((id) => `${id}=${findings.get(id)?.finding ?? '?'}`).join('; ')}`);
    assertHardened(findings, where);
  }
});

/** A handshake offering only `version`, with every cipher the client's OpenSSL has (security level 0). */
function handshake(socket: { port: number } | { socket: import('node:net').Socket }, version: tls.SecureVersion): Promise<string> {
  return new Promise((resolve) => {
    const client = tls.connect({ ...socket, host: '127.0.0.1', ca: readFileSync(ca.caCert), servername: 'localhost',
      minVersion: version, maxVersion: version, ciphers: 'ALL:@SECLEVEL=0' });
    client.once('secureConnect', () => { resolve(`connected ${client.getProtocol()}`); client.destroy(); });
    client.once('error', (error: NodeJS.ErrnoException) => resolve(`refused: ${error.code ?? error.message}`));
  });
}

test('a client offering only TLS 1.0 or 1.1 is refused by the relay with a protocol_version alert; TLS 1.2 connects', async () => {
  for (const version of ['TLSv1', 'TLSv1.1'] as const) {
    // The alert comes from the server: the client did offer the version (security level 0 lets it).
    assert.equal(await handshake({ port: relay.ports.smtps }, version), 'refused: ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', `${version} on 465`);
    const smtp = await RawSmtp.connect(relay.ports.submission);
    await smtp.reply();
    await smtp.command('EHLO client.test');
    assert.match((await smtp.command('STARTTLS')) ?? '', /^220 /);
    assert.equal(await handshake({ socket: smtp.socket }, version), 'refused: ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', `${version} after STARTTLS`);
    smtp.close();
  }
  assert.equal(await handshake({ port: relay.ports.smtps }, 'TLSv1.2'), 'connected TLSv1.2');
});
