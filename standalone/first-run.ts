// A first start with nothing configured: an example domain and API key in the state
// folder, a self-signed certificate and a DKIM key, the DNS records to publish, and a swaks
// command that works as printed.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';
import { stringify } from 'yaml';

export interface FirstRunResult {
  domain: string;
  apiKey: string;
  dnsRecords: { name: string; type: string; value: string }[];
}

/** Writes the example account unless the folder already holds manifests. */
export function createExampleResources(dir: string, domain: string, relayHostname: string): FirstRunResult | undefined {
  if (existsSync(dir) && readdirSync(dir).some((f) => /\.(ya?ml|json)$/.test(f))) return undefined;
  mkdirSync(dir, { recursive: true });
  const namespace = 'default';
  const name = domain.replace(/\./g, '-');
  const apiKey = `mt_${randomBytes(24).toString('base64url')}`;
  const dkim = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const manifests = [
    { apiVersion: 'mtrelay.dev/v1alpha1', kind: 'SendingDomain', metadata: { name, namespace }, spec: { domain, dkim: { selector: 'mtrelay' } } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${name}-dkim`, namespace }, stringData: { privateKey: dkim.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() } },
    { apiVersion: 'mtrelay.dev/v1alpha1', kind: 'ApiKey', metadata: { name: 'example', namespace }, spec: { permissions: ['smtp/send'], secretRef: { name: 'example-key' } } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'example-key', namespace }, stringData: { apiKey } },
  ];
  writeFileSync(path.join(dir, 'example.yaml'), `# Created by the first start of mtrelay standalone. Edit or replace freely.\n${manifests.map((m) => stringify(m)).join('---\n')}`, { mode: 0o600 });
  const publicKey = dkim.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return {
    domain,
    apiKey,
    dnsRecords: [
      { name: `mtrelay._domainkey.${domain}`, type: 'TXT', value: `v=DKIM1; k=rsa; p=${publicKey}` },
      { name: domain, type: 'TXT', value: `v=spf1 a:${relayHostname} ~all` },
    ],
  };
}

/** A self-signed certificate for the relay, unless one was made before. */
export async function ensureSelfSignedCertificate(dir: string, hostname: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, 'tls.crt');
  const key = path.join(dir, 'tls.key');
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  mkdirSync(dir, { recursive: true });
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 1);
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048, algorithm: 'sha256', notAfterDate: notAfter,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }, { type: 7, ip: '127.0.0.1' }] }],
  });
  writeFileSync(key, pems.private, { mode: 0o600 });
  writeFileSync(cert, pems.cert);
  return { cert, key };
}
