// A test certificate authority and server certificates, made with the openssl CLI.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { generate } from 'selfsigned';
import os from 'node:os';
import path from 'node:path';

export interface TestCa {
  dir: string;
  caCert: string;
  caKey: string;
  /** Issues a certificate for the names (DNS names and IP addresses); returns file paths. */
  issue(name: string, altNames: string[], options?: IssueOptions): { cert: string; key: string };
  /** A server certificate from this CA whose validity ended a day ago (openssl 3.0's x509 cannot date one in the past). */
  issueExpired(name: string, altNames: string[]): Promise<{ cert: string; key: string }>;
}

export interface IssueOptions {
  /** `clientAuth` for a client certificate; default `serverAuth`. */
  usage?: 'serverAuth' | 'clientAuth';
  /** Days of validity; default 30. */
  days?: number;
  /** The key: RSA 2048 (default) or ECDSA P-256. */
  algorithm?: 'rsa' | 'ecdsa';
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createTestCa(dir = mkdtempSync(path.join(os.tmpdir(), 'mtrelay-ca-'))): TestCa {
  const caKey = path.join(dir, 'ca.key');
  const caCert = path.join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '30',
    '-subj', '/CN=mtrelay test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  let serial = 1;
  return {
    dir,
    caCert,
    caKey,
    issue(name, altNames, { usage = 'serverAuth', days = 30, algorithm = 'rsa' } = {}) {
      const key = path.join(dir, `${name}.key`);
      const csr = path.join(dir, `${name}.csr`);
      const cert = path.join(dir, `${name}.pem`);
      const ext = path.join(dir, `${name}.ext`);
      const san = altNames.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\n`);
      const newKey = algorithm === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
      openssl(['req', ...newKey, '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${altNames[0] ?? name}`], dir);
      openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', String(serial++), '-days', String(days),
        '-out', cert, '-extfile', ext], dir);
      return { cert, key };
    },
    async issueExpired(name, altNames) {
      const day = 24 * 3600 * 1000;
      const pems = await generate([{ name: 'commonName', value: altNames[0] ?? name }], {
        keySize: 2048, algorithm: 'sha256', notBeforeDate: new Date(Date.now() - 30 * day), notAfterDate: new Date(Date.now() - day),
        ca: { key: readFileSync(caKey, 'utf8'), cert: readFileSync(caCert, 'utf8') },
        extensions: [{ name: 'basicConstraints', cA: false }, { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames: altNames.map((value) => ({ type: 2, value })) }],
      });
      const cert = path.join(dir, `${name}.pem`);
      const key = path.join(dir, `${name}.key`);
      writeFileSync(cert, pems.cert);
      writeFileSync(key, pems.private);
      return { cert, key };
    },
  };
}
