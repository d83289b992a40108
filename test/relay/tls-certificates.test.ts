// The relay's certificates: a renewed one (cert-manager rewrites the mounted Secret's files)
// is put in use without a restart and its expiry exported for the CertificateExpiring alert;
// with an RSA and an ECDSA certificate each client is served one it supports.
// @needs kafka processes openssl
// @limit 30s
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { testKafka } from '../helpers/env.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { createTestCa, type TestCa } from '../helpers/tls.ts';

let ca: TestCa;
let relay: RelayProcess;
const mounted = { cert: '', key: '' };

before(async () => {
  ca = createTestCa();
  const first = ca.issue('first', ['localhost', '127.0.0.1'], { days: 10 });
  const dir = tempDir('tls');
  mounted.cert = path.join(dir, 'tls.crt');
  mounted.key = path.join(dir, 'tls.key');
  copyFileSync(first.cert, mounted.cert);
  copyFileSync(first.key, mounted.key);
  relay = await RelayProcess.start({ resources: accountFolder(newApiKey()).dir, kafka: testKafka(), tls: mounted });
});
after(async () => {
  await relay?.stop();
});

const notAfter = (file: string) => Date.parse(new X509Certificate(readFileSync(file)).validTo) / 1000;

/** The certificate a new implicit-TLS connection is shown. */
function servedCertificate(): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: relay.ports.smtps, ca: readFileSync(ca.caCert), servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate());
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

test('the expiry of the certificate in use is a metric, and a renewed one replaces it without a restart', async () => {
  assert.equal(await relay.metric('mtrelay_relay_tls_certificate_expiry_timestamp_seconds'), notAfter(mounted.cert));
  const firstServed = await servedCertificate();

  const renewed = ca.issue('renewed', ['localhost', '127.0.0.1'], { days: 20 });
  copyFileSync(renewed.key, mounted.key);
  copyFileSync(renewed.cert, mounted.cert);
  await relay.waitForLog((l) => l.msg === 'TLS certificate reloaded', 10_000);
  assert.equal(await relay.metric('mtrelay_relay_tls_certificate_expiry_timestamp_seconds'), notAfter(renewed.cert));
  const renewedServed = await servedCertificate();
  assert.notEqual(renewedServed.serialNumber, firstServed.serialNumber);
  assert.equal(Date.parse(renewedServed.valid_to) / 1000, notAfter(renewed.cert));
});

test('with RSA and ECDSA certificates, each client gets one it can verify: ECDSA when it can, RSA otherwise', async () => {
  const rsa = ca.issue('dual-rsa', ['localhost', '127.0.0.1']);
  const ecdsa = ca.issue('dual-ecdsa', ['localhost', '127.0.0.1'], { algorithm: 'ecdsa' });
  const dual = await RelayProcess.start({ resources: accountFolder(newApiKey()).dir, kafka: testKafka(),
    tls: { cert: `${rsa.cert},${ecdsa.cert}`, key: `${rsa.key},${ecdsa.key}` } });
  try {
    const served = (options: tls.ConnectionOptions) => new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: dual.ports.smtps, ca: readFileSync(ca.caCert), servername: 'localhost', ...options }, () => {
        const peer = socket.getPeerCertificate() as tls.PeerCertificate & { asn1Curve?: string };
        resolve(peer.asn1Curve ? `ECDSA ${peer.asn1Curve}` : `RSA ${peer.bits}`);
        socket.destroy();
      });
      socket.once('error', (error) => reject(new Error(`${JSON.stringify(options)}: ${error.message}`)));
    });
    assert.equal(await served({}), 'ECDSA prime256v1', 'a client that can verify both gets the smaller, faster one');
    assert.equal(await served({ sigalgs: 'ecdsa_secp256r1_sha256' }), 'ECDSA prime256v1');
    assert.equal(await served({ sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256' }), 'RSA 2048', 'TLS 1.3 without ECDSA');
    assert.equal(await served({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }), 'RSA 2048', 'TLS 1.2, RSA suites only');
    assert.equal(await served({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }), 'ECDSA prime256v1');
    // The expiry alert watches the certificate that expires first.
    const first = Math.min(notAfter(rsa.cert), notAfter(ecdsa.cert));
    assert.equal(await dual.metric('mtrelay_relay_tls_certificate_expiry_timestamp_seconds'), first);
  } finally {
    await dual.stop();
  }
});
