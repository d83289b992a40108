// DKIM signatures (rsa-sha256, relaxed/relaxed) with the sending domain's key.
import DKIM from 'nodemailer/lib/dkim';

export interface DkimKey {
  domainName: string;
  keySelector: string;
  privateKey: string;
}

export async function dkimSign(message: Buffer, key: DkimKey): Promise<Buffer> {
  const signer = new DKIM({ ...key, hashAlgo: 'sha256' });
  const chunks: Buffer[] = [];
  for await (const chunk of signer.sign(message)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
