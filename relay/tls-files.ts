// Certificates and keys from files, reloaded without a restart when a file changes
// (cert-manager rotates them in place), and only TLS 1.2 or newer. Several pairs may be given,
// typically RSA and ECDSA: each client is served the one it supports (ECDSA when it can: a
// smaller, faster handshake; RSA for clients that cannot).
import { X509Certificate, constants } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import tls from 'node:tls';
import type { Logger } from 'pino';

/**
 * TLS 1.2 or newer, and no renegotiation at all: a client could otherwise make the relay redo
 * the expensive half of a handshake at will (testssl.sh found this on STARTTLS, where the
 * socket is upgraded outside Node's TLS server and its renegotiation limit does not apply).
 */
export const TLS_OPTIONS = { minVersion: 'TLSv1.2' as const, secureOptions: constants.SSL_OP_NO_RENEGOTIATION };

/** A certificate chain file and its key file. */
export interface CertificateFiles {
  cert: string;
  key: string;
}

/** Node.js takes several certificates as parallel lists of chains and keys. */
export interface TlsMaterial {
  key: Buffer[];
  cert: Buffer[];
}

export function readTlsFiles(pairs: CertificateFiles[]): TlsMaterial {
  const material: TlsMaterial = { cert: [], key: [] };
  for (const pair of pairs) {
    const cert = readFileSync(pair.cert);
    const key = readFileSync(pair.key);
    tls.createSecureContext({ cert, key, ...TLS_OPTIONS }); // throws when the two do not match
    material.cert.push(cert);
    material.key.push(key);
  }
  return material;
}

/** When the first of the certificates in use expires (each chain's first, the server's own), in Unix seconds. */
export function certificateExpiry(material: TlsMaterial): number {
  return Math.min(...material.cert.map((chain) => Date.parse(new X509Certificate(chain).validTo) / 1000));
}

/** Calls `onChange` with new material whenever a file changed and every pair reads as a valid pair again. */
export function watchTlsFiles(pairs: CertificateFiles[], logger: Logger, onChange: (m: TlsMaterial) => void): () => void {
  const certFiles = pairs.map((p) => p.cert);
  const reload = () => {
    try {
      onChange(readTlsFiles(pairs));
      logger.info({ certFiles }, 'TLS certificate reloaded');
    } catch (error) {
      logger.warn({ err: error, certFiles }, 'TLS files unreadable or mismatched; keeping the current certificate');
    }
  };
  const files = pairs.flatMap((p) => [p.cert, p.key]);
  for (const file of files) watchFile(file, { interval: 1000 }, reload);
  return () => {
    for (const file of files) unwatchFile(file, reload);
  };
}
