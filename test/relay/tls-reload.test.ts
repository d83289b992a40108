// A renewed certificate (cert-manager rewrites the mounted Secret's files) is put in use
// without a restart, and its expiry is exported for the CertificateExpiring alert.
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
  const first = ca.issue('first', ['localhost', '127.0.0.1'], 'serverAuth', 10);
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

  const renewed = ca.issue('renewed', ['localhost', '127.0.0.1'], 'serverAuth', 20);
  copyFileSync(renewed.key, mounted.key);
  copyFileSync(renewed.cert, mounted.cert);
  await relay.waitForLog((l) => l.msg === 'TLS certificate reloaded', 10_000);
  assert.equal(await relay.metric('mtrelay_relay_tls_certificate_expiry_timestamp_seconds'), notAfter(renewed.cert));
  const renewedServed = await servedCertificate();
  assert.notEqual(renewedServed.serialNumber, firstServed.serialNumber);
  assert.equal(Date.parse(renewedServed.valid_to) / 1000, notAfter(renewed.cert));
});
