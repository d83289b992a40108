// DANE for SMTP (RFC 7672): TLSA records, published in a DNSSEC-signed zone, say which
// certificate or public key an MX host presents. Only the usages RFC 7672 3.1 allows for SMTP
// count: DANE-TA(2) (a trust anchor of the host's chain, names checked) and DANE-EE(3) (the
// host's own certificate or key; names and dates not checked, RFC 7672 3.1.1).
import { createHash, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { ValidatedDns } from './validated-dns.ts';

export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

/** What DNS says about a host's TLS (RFC 7672 2.2). */
export type DaneLookup =
  /** No validated TLSA records (insecure zone, or none published): DANE does not apply. */
  | { kind: 'none' }
  /** Validated, usable records: TLS is mandatory and must match one of them. */
  | { kind: 'dane'; records: TlsaRecord[] }
  /** Validated records, none usable: TLS is mandatory but not authenticated (RFC 7672 2.2). */
  | { kind: 'unusable' }
  /** The lookup failed for a host in a signed zone: the host is not tried now (RFC 7672 2.2.2). */
  | { kind: 'failed'; detail: string };

const usable = (r: TlsaRecord) => [2, 3].includes(r.usage) && [0, 1].includes(r.selector) && [0, 1, 2].includes(r.matchingType);

/** Whether the domain's MX records (or, without any, its proof of none) were validated. */
export async function mxSecure(dns: ValidatedDns, domain: string): Promise<boolean> {
  const answer = await dns.query(domain, 'MX').catch(() => undefined);
  return answer?.rcode === 'NOERROR' && answer.authenticated;
}

/** Whether the host's address records were validated: TLSA records of a host whose addresses are not are not used (RFC 7672 2.2.2). */
async function addressesSecure(dns: ValidatedDns, host: string): Promise<boolean> {
  const answers = await Promise.all((['A', 'AAAA'] as const).map((type) => dns.query(host, type).catch(() => undefined)));
  const found = answers.filter((a) => a?.rcode === 'NOERROR' && a.answers.length);
  return found.length > 0 && found.every((a) => a!.authenticated);
}

/** The TLSA records at `_<port>._tcp.<host>`, when the MX records that named the host and the host's addresses were validated. */
export async function daneFor(dns: ValidatedDns, host: string, port: number): Promise<DaneLookup> {
  if (!(await addressesSecure(dns, host))) return { kind: 'none' };
  const name = `_${port}._tcp.${host}`;
  let answer;
  try {
    answer = await dns.query(name, 'TLSA');
  } catch (error) {
    return { kind: 'failed', detail: `TLSA ${name}: ${(error as Error).message}` };
  }
  // A validating resolver answers SERVFAIL to a bogus signature: a possible attack, not "no TLSA".
  if (answer.rcode !== 'NOERROR' && answer.rcode !== 'NXDOMAIN') return { kind: 'failed', detail: `TLSA ${name}: ${answer.rcode}` };
  if (!answer.authenticated || !answer.answers.length) return { kind: 'none' };
  const records = answer.answers.flatMap((a) => (a.type === 'TLSA' ? [{ usage: a.data.usage, selector: a.data.selector, matchingType: a.data.matchingType, data: a.data.certificate }] : []));
  const kept = records.filter(usable);
  return kept.length ? { kind: 'dane', records: kept } : { kind: 'unusable' };
}

/** The record's view of a certificate: the whole certificate or its public key, as is or hashed. */
function associatedData(cert: X509Certificate, record: TlsaRecord): Buffer {
  const selected = record.selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  if (record.matchingType === 1) return createHash('sha256').update(selected).digest();
  if (record.matchingType === 2) return createHash('sha512').update(selected).digest();
  return selected;
}

const matches = (cert: X509Certificate, record: TlsaRecord) => associatedData(cert, record).equals(record.data);

/** The certificates the server presented, its own first. */
export function presentedChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  let cert = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (cert?.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(new X509Certificate(cert.raw));
    cert = cert.issuerCertificate;
  }
  return chain;
}

/** Undefined when the chain satisfies a record; otherwise why not (RFC 7672 3.1, RFC 7671 5). */
export function daneMismatch(chain: X509Certificate[], records: TlsaRecord[], hostName: string): string | undefined {
  const [leaf] = chain;
  if (!leaf) return 'the server presented no certificate';
  if (records.some((r) => r.usage === 3 && matches(leaf, r))) return undefined;
  for (const record of records.filter((r) => r.usage === 2)) {
    const anchor = chain.findIndex((cert, i) => i > 0 && matches(cert, record));
    if (anchor < 0) continue;
    // Each certificate up to the trust anchor is signed by the next one.
    const signed = chain.slice(0, anchor).every((cert, i) => cert.checkIssued(chain[i + 1]!) && cert.verify(chain[i + 1]!.publicKey));
    if (!signed) return 'the chain to the DANE-TA trust anchor does not verify';
    if (!leaf.checkHost(hostName, { wildcards: true, partialWildcards: false })) return `the certificate does not name ${hostName} (DANE-TA)`;
    return undefined;
  }
  return 'no TLSA record matches the certificate the server presented';
}
