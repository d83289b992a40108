// Writes account manifests into a folder the relay watches, as a user would.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

export function newApiKey(): string {
  return `mt_${randomBytes(24).toString('base64url')}`;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `mtrelay-${prefix}-`));
}

export function sendingDomainYaml(namespace: string, name: string, domain: string): string {
  return `apiVersion: mtrelay.dev/v1alpha1\nkind: SendingDomain\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n  domain: ${domain}\n`;
}

export interface KeyManifestOptions {
  permissions?: string[];
  disabled?: boolean;
  expiresAt?: string;
  /** spec.limits, e.g. { messagesPerHour: 5 }. */
  limits?: Record<string, number>;
}

export function apiKeyYaml(namespace: string, name: string, key: string, options: KeyManifestOptions = {}): string {
  const permissions = JSON.stringify(options.permissions ?? ['smtp/send']);
  return [
    'apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', 'metadata:', `  name: ${name}`, `  namespace: ${namespace}`, 'spec:',
    `  permissions: ${permissions}`, '  secretRef:', `    name: ${name}-key`,
    ...(options.disabled !== undefined ? [`  disabled: ${options.disabled}`] : []),
    ...(options.expiresAt ? [`  expiresAt: "${options.expiresAt}"`] : []),
    ...(options.limits ? [`  limits: ${JSON.stringify(options.limits)}`] : []),
    '---', 'apiVersion: v1', 'kind: Secret', 'metadata:', `  name: ${name}-key`, `  namespace: ${namespace}`,
    'data:', `  apiKey: ${Buffer.from(key).toString('base64')}`, '',
  ].join('\n');
}

/** The DKIM key Secret of a SendingDomain named `name` (`<name>-dkim`), from a PEM private key. */
export function dkimSecretYaml(namespace: string, name: string, privateKeyPem: string): string {
  const indented = privateKeyPem.trim().split('\n').map((l) => `    ${l}`).join('\n');
  return `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}-dkim, namespace: ${namespace}}\nstringData:\n  privateKey: |\n${indented}\n`;
}

let testDkimKey: string | undefined;

/** One DKIM private key (PEM) for every test of the process that does not check signatures against DNS. */
export function testDkimKeyPem(): string {
  testDkimKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return testDkimKey;
}

/** A SendingDomain with its `<name>-dkim` Secret, as mtrelay needs to send from it. */
export function signedDomainYaml(namespace: string, name: string, domain: string): string {
  return `${sendingDomainYaml(namespace, name, domain)}---\n${dkimSecretYaml(namespace, name, testDkimKeyPem())}`;
}

/** A folder with one account: namespace `acme`, domain `example.com` with a DKIM key (`dkim.yaml`, which a test may replace), one key. */
export function accountFolder(key: string, dir = tempDir('resources')) {
  writeFileSync(path.join(dir, 'domain.yaml'), sendingDomainYaml('acme', 'example-com', 'example.com'));
  writeFileSync(path.join(dir, 'dkim.yaml'), dkimSecretYaml('acme', 'example-com', testDkimKeyPem()));
  writeFileSync(path.join(dir, 'key.yaml'), apiKeyYaml('acme', 'app', key));
  return {
    dir,
    write(file: string, content: string) {
      writeFileSync(path.join(dir, file), content);
    },
    remove(file: string) {
      rmSync(path.join(dir, file), { force: true });
    },
  };
}
