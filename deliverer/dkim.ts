// DKIM signatures (RFC 6376, relaxed/relaxed; rsa-sha256, or ed25519-sha256 by RFC 8463 when
// the key is Ed25519). The body hash is computed once per distinct body (`relaxedBodyHash`) and
// each copy then signs only its header block, which is what lets a fan-out of many copies, or
// a 10 MB message, cost one hash pass. The signed fields are RFC 6376's recommended list plus
// List-Unsubscribe-Post, which RFC 8058 requires the signature to cover for one-click
// unsubscribe; Bcc is not among them, so each bcc copy still verifies.
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { headerBlockEnd, splitRawFields, type RawField } from '../shared/mail/headers.ts';
import { relaxedBodyHash, relaxedHeader } from './dkim-canonical.ts';

export { relaxedBodyHash } from './dkim-canonical.ts';

export interface DkimKey {
  domainName: string;
  keySelector: string;
  privateKey: string;
}

/** The fields signed when present, in the order they are listed in `h=`. */
export const SIGNED_FIELDS = [
  'From', 'Sender', 'Reply-To', 'Subject', 'Date', 'Message-ID', 'To', 'Cc', 'MIME-Version', 'Content-Type',
  'Content-Transfer-Encoding', 'Content-ID', 'Content-Description', 'Resent-Date', 'Resent-From', 'Resent-Sender',
  'Resent-To', 'Resent-Cc', 'Resent-Message-ID', 'In-Reply-To', 'References', 'List-Id', 'List-Help',
  'List-Unsubscribe', 'List-Unsubscribe-Post', 'List-Subscribe', 'List-Post', 'List-Owner', 'List-Archive', 'BIMI-Selector',
];

/**
 * Fields listed once more than they occur (RFC 6376 8.15): a receiver then fails the signature if
 * one more is added above the signed ones, so a second From or Subject cannot ride on it.
 */
const OVERSIGNED = new Set(['from', 'reply-to', 'subject', 'date', 'to', 'cc', 'message-id']);

/** Parsed keys by PEM: parsing an RSA key costs more than hashing a 4 KB message. Bounded, keys change rarely. */
const parsedKeys = new Map<string, KeyObject>();

function privateKey(pem: string): KeyObject {
  let key = parsedKeys.get(pem);
  if (!key) {
    key = createPrivateKey(pem);
    if (parsedKeys.size >= 256) parsedKeys.clear();
    parsedKeys.set(pem, key);
  }
  return key;
}

/**
 * The header fields to sign, each listed name once per instance, instances taken bottom-up (RFC
 * 6376 5.4.2); oversigned names once more, present or not (a name beyond its instances signs
 * nothing, by 5.4.2, and makes a receiver fail one added later).
 */
function fieldsToSign(fields: RawField[]): { names: string[]; fields: RawField[] } {
  const names: string[] = [];
  const chosen: RawField[] = [];
  for (const name of SIGNED_FIELDS) {
    const lower = name.toLowerCase();
    const instances = fields.filter((f) => f.name === lower).reverse();
    for (const field of instances) {
      names.push(name);
      chosen.push(field);
    }
    if (OVERSIGNED.has(lower)) names.push(name);
  }
  return { names, fields: chosen };
}

/** Folds `text` after the separator at or before 72 characters per line, as long header values are. */
function fold(text: string, separator: string): string {
  const lines: string[] = [];
  let rest = text;
  while (rest.length > 72) {
    const cut = separator ? rest.lastIndexOf(separator, 72) + 1 || 72 : 72;
    lines.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  return [...lines, rest].join('\r\n ');
}

/** Signs in libuv's thread pool: an RSA-2048 signature is 0.35 ms of CPU the event loop need not wait for. */
function signInPool(algorithm: string | null, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => sign(algorithm, data, key, (error, signature) => (error ? reject(error) : resolve(signature))));
}

/**
 * The DKIM-Signature field (with its CRLF) for a copy whose header block is `header` and whose
 * body's relaxed hash is `bodyHash`. Rejects, with the reason, when the key cannot sign.
 */
export async function dkimSignatureField(header: Buffer, bodyHash: string, key: DkimKey, signedAt = Date.now()): Promise<Buffer> {
  let keyObject: KeyObject;
  try {
    keyObject = privateKey(key.privateKey);
    if (keyObject.asymmetricKeyType !== 'rsa' && keyObject.asymmetricKeyType !== 'ed25519') throw new Error(`a ${keyObject.asymmetricKeyType} key cannot sign DKIM (RSA or Ed25519 only)`);
  } catch (error) {
    throw new Error(`DKIM signing for ${key.domainName} (selector ${key.keySelector}) failed: ${(error as Error).message}`, { cause: error });
  }
  const rsa = keyObject.asymmetricKeyType === 'rsa';
  const { names, fields } = fieldsToSign(splitRawFields(header.toString('latin1')));
  const unsigned = [
    `DKIM-Signature: v=1; a=${rsa ? 'rsa' : 'ed25519'}-sha256; c=relaxed/relaxed; d=${key.domainName}; s=${key.keySelector};`,
    ` t=${Math.floor(signedAt / 1000)}; bh=${bodyHash};`,
    ` h=${fold(names.join(':'), ':')};`,
    ' b=',
  ].join('\r\n');
  const signedData = Buffer.from(`${[...fields.map((f) => relaxedHeader(f.raw)), relaxedHeader(unsigned)].join('\r\n')}`, 'latin1');
  // RFC 8463: Ed25519 signs the SHA-256 of the data (PureEdDSA), RSA signs the data with SHA-256.
  const signature = rsa ? await signInPool('sha256', signedData, keyObject) : await signInPool(null, createHash('sha256').update(signedData).digest(), keyObject);
  return Buffer.from(`${unsigned}${fold(signature.toString('base64'), '')}\r\n`, 'latin1');
}

/** A whole message signed: its DKIM-Signature field prepended. The body is hashed here; fan-out hashes it once instead. */
export async function dkimSign(message: Buffer, key: DkimKey): Promise<Buffer> {
  const end = headerBlockEnd(message);
  const header = message.subarray(0, end === -1 ? message.length : end);
  // The body starts after the empty line that ends the header block.
  const field = await dkimSignatureField(header, relaxedBodyHash(message.subarray(end === -1 ? message.length : end + 2)), key);
  return Buffer.concat([field, message]);
}
