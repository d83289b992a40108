// A first start with nothing configured: an example domain and API key in the state
// folder, a self-signed certificate and a DKIM key, the DNS records to publish, and a swaks
// command that works as printed. Keys, Secret names and records are made exactly as the
// operator makes them (shared/config/credentials.ts, shared/config/secret-names.ts).
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';
import { stringify } from 'yaml';
import { dkimPublicKeyData, generateDkimKey, newApiKeyValue, sendingDomainRecords, type DomainDnsRecord } from '../shared/config/credentials.ts';
import {
  API_KEY_SECRET_KEY, DEFAULT_DKIM_KEY_BITS, DEFAULT_DKIM_SELECTOR, DKIM_PRIVATE_KEY, dkimSecretName, generatedApiKeySecretName,
} from '../shared/config/secret-names.ts';
import { API_GROUP_VERSION } from '../shared/config/types.ts';

export interface FirstRunResult {
  domain: string;
  apiKey: string;
  dnsRecords: DomainDnsRecord[];
}

/** Writes the example account unless the folder already holds manifests. */
export async function createExampleResources(dir: string, domain: string, relayHostname: string): Promise<FirstRunResult | undefined> {
  if (existsSync(dir) && readdirSync(dir).some((f) => /\.(ya?ml|json)$/.test(f))) return undefined;
  mkdirSync(dir, { recursive: true });
  const namespace = 'default';
  const name = domain.replace(/\./g, '-');
  const keyName = 'example';
  const apiKey = newApiKeyValue();
  const dkim = await generateDkimKey(DEFAULT_DKIM_KEY_BITS);
  const manifests = [
    { apiVersion: API_GROUP_VERSION, kind: 'SendingDomain', metadata: { name, namespace }, spec: { domain, dkim: { selector: DEFAULT_DKIM_SELECTOR } } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: dkimSecretName(name), namespace }, stringData: { [DKIM_PRIVATE_KEY]: dkim.privateKey } },
    // No secretRef: the key is in the Secret named as the operator names generated keys.
    { apiVersion: API_GROUP_VERSION, kind: 'ApiKey', metadata: { name: keyName, namespace }, spec: { permissions: ['smtp/send'] } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: generatedApiKeySecretName(keyName), namespace }, stringData: { [API_KEY_SECRET_KEY]: apiKey } },
  ];
  writeFileSync(path.join(dir, 'example.yaml'), `# Created by the first start of mtrelay standalone. Edit or replace freely.\n${manifests.map((m) => stringify(m)).join('---\n')}`, { mode: 0o600 });
  return {
    domain,
    apiKey,
    dnsRecords: sendingDomainRecords({ domain, selector: DEFAULT_DKIM_SELECTOR, publicKeyData: dkimPublicKeyData(dkim.privateKey), spfMechanism: `a:${relayHostname}` }),
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
