// The secrets mtrelay makes for an account, the same way everywhere (operator and
// standalone's first start): API keys, DKIM key pairs, and the DNS records that publish a
// sending domain's public key (RFC 6376 3.6.1) and sender policy.
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const generate = promisify(generateKeyPair);

/** API keys shorter than this are refused: they could be guessed. */
export const MIN_API_KEY_LENGTH = 20;

/** 32 random bytes: far beyond guessing, and recognisable by its `mt_` start. */
export function newApiKeyValue(): string {
  return `mt_${randomBytes(32).toString('base64url')}`;
}

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

export interface DomainDnsRecord {
  purpose: 'dkim' | 'spf' | 'tracking' | 'dmarc';
  type: 'TXT' | 'CNAME';
  name: string;
  value: string;
}

export interface DomainRecordsInput {
  domain: string;
  selector: string;
  publicKeyData: string;
  /** SPF mechanism that authorizes mtrelay's outbound addresses (`include:spf.example.net`, `a:relay.example`); none when unset. */
  spfMechanism?: string;
  trackingDomain?: string;
  /** Where the tracking domain must point; no CNAME is asked for when unset. */
  trackingCname?: string;
}

/** The DMARC record asked for when the domain has none: monitoring only (p=none); any v=DMARC1 record the owner publishes will do. */
export const DMARC_RECORD_VALUE = 'v=DMARC1; p=none';

/**
 * The records a sending domain's owner publishes: DKIM first (it proves ownership), then SPF,
 * tracking, and DMARC (Gmail and Yahoo require one of bulk senders; mail passes it by the DKIM
 * signature, whose d= is the domain itself).
 */
export function sendingDomainRecords(input: DomainRecordsInput): DomainDnsRecord[] {
  return [
    { purpose: 'dkim', type: 'TXT', name: `${input.selector}._domainkey.${input.domain}`, value: dkimRecordValue(input.publicKeyData) },
    ...(input.spfMechanism ? [{ purpose: 'spf' as const, type: 'TXT' as const, name: input.domain, value: `v=spf1 ${input.spfMechanism} ~all` }] : []),
    ...(input.trackingCname && input.trackingDomain
      ? [{ purpose: 'tracking' as const, type: 'CNAME' as const, name: input.trackingDomain, value: input.trackingCname }] : []),
    { purpose: 'dmarc', type: 'TXT', name: `_dmarc.${input.domain}`, value: DMARC_RECORD_VALUE },
  ];
}
