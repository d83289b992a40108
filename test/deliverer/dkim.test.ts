// The DKIM signer's choices, on the signature itself: the fields it covers (RFC 8058 needs
// List-Unsubscribe-Post; Bcc must stay out), and a key that cannot sign says why.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { dkimSign } from '../../deliverer/dkim.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const message = Buffer.from([
  'From: Shop <shop@example.com>', 'To: a@x.test', 'Bcc: b@x.test', 'Subject: Offer',
  'List-Unsubscribe: <https://t.example.com/u/1>, <mailto:u@example.com>', 'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
  '', 'body', '',
].join('\r\n'));

test('the signature covers List-Unsubscribe-Post and never Bcc', async () => {
  const signed = (await dkimSign(message, { domainName: 'example.com', keySelector: 's1', privateKey: rsa })).toString();
  const field = /^DKIM-Signature: (.*(?:\r\n[ \t].*)*)/m.exec(signed)![1]!.replace(/\r\n[ \t]/g, ' ');
  const signedFields = /\bh=([^;]+)/.exec(field)![1]!.split(':').map((f) => f.trim().toLowerCase());
  assert.ok(signedFields.includes('list-unsubscribe-post') && signedFields.includes('list-unsubscribe'), signedFields.join(', '));
  assert.ok(!signedFields.includes('bcc'));
  assert.match(field, /^v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com; /);
  assert.ok(signed.endsWith(message.toString()), 'the message follows its signature unchanged');
});

test('a key that cannot sign is refused with the reason, not with a silent unsigned message', async () => {
  const ed25519 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await assert.rejects(dkimSign(message, { domainName: 'example.com', keySelector: 's1', privateKey: `${ed25519.slice(0, 60)}broken${ed25519.slice(60)}` }),
    /^Error: DKIM signing for example\.com \(selector s1\) failed: (?!no signature made)./);
});
