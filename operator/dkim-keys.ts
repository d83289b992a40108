// DKIM keys: generated RSA pairs and the TXT record that publishes the public half (RFC 6376 3.6.1).
import { createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

const generate = promisify(generateKeyPair);

export async function generateDkimKey(bits: number): Promise<{ privateKey: string; publicKey: string }> {
  const { privateKey, publicKey } = await generate('rsa', {
    modulusLength: bits,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKey, publicKey };
}

/** The base64 of the DER public key, as the `p=` tag carries it; derived from the private key. */
export function dkimPublicKeyData(privateKeyPem: string): string {
  return createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' }).toString('base64');
}

export function dkimRecordValue(publicKeyData: string): string {
  return `v=DKIM1; k=rsa; p=${publicKeyData}`;
}

/** The p= tag of a DKIM TXT record, whitespace removed; undefined when the record has none. */
export function dkimRecordKey(record: string): string | undefined {
  for (const tag of record.split(';')) {
    const [name, ...value] = tag.split('=');
    if (name?.trim() === 'p') return value.join('=').replace(/\s+/g, '');
  }
  return undefined;
}

/** The modulus size of a PEM RSA private key; 0 for other key types; throws for anything but a private key. */
export function keyBits(privateKeyPem: string): number {
  const key = createPrivateKey(privateKeyPem);
  return key.asymmetricKeyType === 'rsa' ? key.asymmetricKeyDetails?.modulusLength ?? 0 : 0;
}
