// DKIM signatures (rsa-sha256, relaxed/relaxed) with the sending domain's key, by mailauth's
// public signer. The signed fields are RFC 6376's recommended list plus List-Unsubscribe-Post,
// which RFC 8058 requires the signature to cover for one-click unsubscribe; Bcc is not among
// them, so each bcc copy still verifies.
import { dkimSign as signMessage } from 'mailauth';

export interface DkimKey {
  domainName: string;
  keySelector: string;
  privateKey: string;
}

/** The fields signed when present (colon-separated, as mailauth takes them). */
export const SIGNED_FIELDS = [
  'From', 'Sender', 'Reply-To', 'Subject', 'Date', 'Message-ID', 'To', 'Cc', 'MIME-Version', 'Content-Type',
  'Content-Transfer-Encoding', 'Content-ID', 'Content-Description', 'Resent-Date', 'Resent-From', 'Resent-Sender',
  'Resent-To', 'Resent-Cc', 'Resent-Message-ID', 'In-Reply-To', 'References', 'List-Id', 'List-Help',
  'List-Unsubscribe', 'List-Unsubscribe-Post', 'List-Subscribe', 'List-Post', 'List-Owner', 'List-Archive', 'BIMI-Selector',
].join(':');

/** The message with its DKIM-Signature field prepended; throws when the key cannot sign. */
export async function dkimSign(message: Buffer, key: DkimKey): Promise<Buffer> {
  const signature = { signingDomain: key.domainName, selector: key.keySelector, privateKey: key.privateKey, algorithm: 'rsa-sha256', canonicalization: 'relaxed/relaxed' };
  // mailauth signs what `signatureData` lists (its top-level key options alone sign nothing);
  // its header list is a colon-separated string, whatever its type declarations say.
  const { signatures, errors } = await signMessage(message, { ...signature, signatureData: [signature], headerList: SIGNED_FIELDS as unknown as string[] });
  if (errors.length || !signatures.startsWith('DKIM-Signature:')) {
    // mailauth reports { err, selector, signingDomain } records, not Errors.
    const reasons = (errors as unknown as { err?: Error; message?: string }[]).map((e) => e.err?.message ?? e.message ?? String(e));
    throw new Error(`DKIM signing for ${key.domainName} (selector ${key.keySelector}) failed: ${reasons.join('; ') || 'no signature made'}`);
  }
  return Buffer.concat([Buffer.from(signatures), message]);
}
