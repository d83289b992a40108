// The account every end-to-end benchmark sends as: namespace acme, domain example.com with a
// fresh DKIM key in its Secret, and an API key, in a folder of manifests removed after the run.
// Every system signs, as production does: mtrelay with the domain's key Secret, Postfix through
// OpenDKIM with the same key.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_DKIM_SELECTOR } from '../../shared/config/secret-names.ts';
import { accountFolder, dkimSecretYaml, newApiKey } from '../helpers/resources.ts';
import type { RunControl } from './run-control.ts';
import type { SystemOptions } from './e2e-systems.ts';

export function benchAccount(run: RunControl, dir: string): Pick<SystemOptions, 'account' | 'dkim'> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  run.defer(() => rmSync(dir, { recursive: true, force: true }));
  const key = newApiKey();
  const account = { resources: accountFolder(key, dir).dir, key };
  const privateKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(path.join(account.resources, 'dkim.yaml'), dkimSecretYaml('acme', 'example-com', privateKeyPem));
  return { account, dkim: { domain: 'example.com', selector: DEFAULT_DKIM_SELECTOR, privateKeyPem } };
}
