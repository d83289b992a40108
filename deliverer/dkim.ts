// DKIM signatures (rsa-sha256, relaxed/relaxed) with the sending domain's key, by mailauth's
// public signer. Bcc is not among the signed fields, so each bcc copy still verifies.
import { dkimSign as signMessage } from 'mailauth';

export interface DkimKey {
  domainName: string;
  keySelector: string;
  privateKey: string;
}

/** The message with its DKIM-Signature field prepended. */
export async function dkimSign(message: Buffer, key: DkimKey): Promise<Buffer> {
  const signature = { signingDomain: key.domainName, selector: key.keySelector, privateKey: key.privateKey, algorithm: 'rsa-sha256', canonicalization: 'relaxed/relaxed' };
  // mailauth signs what `signatureData` lists (its top-level key options alone sign nothing).
  const { signatures, errors } = await signMessage(message, { ...signature, signatureData: [signature] });
  if (errors.length || !signatures.startsWith('DKIM-Signature:')) {
    throw new Error(`DKIM signing for ${key.domainName} failed: ${errors.map((e) => e.message).join('; ') || 'no signature made'}`);
  }
  return Buffer.concat([Buffer.from(signatures), message]);
}
