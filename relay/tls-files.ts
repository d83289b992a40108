// Certificate and key from files, reloaded without a restart when either file changes
// (cert-manager rotates them in place), and only TLS 1.2 or newer.
import { X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import tls from 'node:tls';
import type { Logger } from 'pino';

export const TLS_OPTIONS = { minVersion: 'TLSv1.2' as const };

export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
}

export function readTlsFiles(certFile: string, keyFile: string): TlsMaterial {
  const material = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  tls.createSecureContext({ ...material, ...TLS_OPTIONS }); // throws when they do not match
  return material;
}

/** When the first certificate of the chain (the server's own) expires, in Unix seconds. */
export function certificateExpiry(material: TlsMaterial): number {
  return Date.parse(new X509Certificate(material.cert).validTo) / 1000;
}

/** Calls `onChange` with new material whenever both files read as a valid pair again. */
export function watchTlsFiles(certFile: string, keyFile: string, logger: Logger, onChange: (m: TlsMaterial) => void): () => void {
  const reload = () => {
    try {
      onChange(readTlsFiles(certFile, keyFile));
      logger.info({ certFile }, 'TLS certificate reloaded');
    } catch (error) {
      logger.warn({ err: error, certFile, keyFile }, 'TLS files unreadable or mismatched; keeping the current certificate');
    }
  };
  watchFile(certFile, { interval: 1000 }, reload);
  watchFile(keyFile, { interval: 1000 }, reload);
  return () => {
    unwatchFile(certFile, reload);
    unwatchFile(keyFile, reload);
  };
}
