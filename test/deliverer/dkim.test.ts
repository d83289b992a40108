// The DKIM signer: its signatures verify with an independent verifier (mailauth's) over bodies
// and headers that exercise every relaxed canonicalization rule; it covers the fields it
// should (RFC 8058 needs List-Unsubscribe-Post; Bcc must stay out); a key that cannot sign
// says why. The end-to-end tests verify with dkimpy through the real deliverer.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { dkimVerify } from 'mailauth';
import { relaxedBodyHash, relaxedHeader } from '../../deliverer/dkim-canonical.ts';
import { dkimSign, type DkimKey } from '../../deliverer/dkim.ts';

const pair = (type: 'rsa' | 'ed25519') => {
  const { privateKey, publicKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // RFC 8463: an Ed25519 record publishes the bare 32-byte key, RSA the SubjectPublicKeyInfo.
  const p = (type === 'rsa' ? spki : spki.subarray(-32)).toString('base64');
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), record: `v=DKIM1; k=${type}; p=${p}` };
};
const rsa = pair('rsa');
const ed25519 = pair('ed25519');
const key = (privateKey: string): DkimKey => ({ domainName: 'example.com', keySelector: 's1', privateKey });

const message = Buffer.from([
  'From: Shop <shop@example.com>', 'To: a@x.test', 'Bcc: b@x.test', 'Subject: Offer',
  'List-Unsubscribe: <https://t.example.com/u/1>, <mailto:u@example.com>', 'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
  '', 'body', '',
].join('\r\n'));

/** mailauth's verdict on a signed message, the key published as `record` for s1._domainkey.example.com. */
async function verdict(signed: Buffer, record: string): Promise<string> {
  const resolver = async (name: string, type: string) => {
    if (name === 's1._domainkey.example.com' && type === 'TXT') return [[record]];
    throw Object.assign(new Error(`no ${type} for ${name}`), { code: 'ENOTFOUND' });
  };
  const { results } = await dkimVerify(signed, { resolver } as never);
  return results.map((r: { status: { result: string; comment?: string } }) => `${r.status.result}${r.status.comment ? ` (${r.status.comment})` : ''}`).join(', ');
}

/** The relaxed body, canonicalized the slow and obvious way, straight from RFC 6376 3.4.4. */
function referenceRelaxedBody(body: string): string {
  if (body === '') return '';
  const lines = body.split('\r\n');
  if (body.endsWith('\r\n')) lines.pop();
  const canonical = lines.map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (canonical.length && canonical.at(-1) === '') canonical.pop();
  return canonical.length ? `${canonical.join('\r\n')}\r\n` : '';
}

const bodies: Record<string, string> = {
  'empty': '',
  'one line without CRLF': 'hello',
  'only empty lines': '\r\n\r\n\r\n',
  'trailing empty and white-space lines': 'text\r\n\r\n \t \r\n\r\n',
  'runs of spaces and tabs inside lines': 'a  b\t\tc \t d\r\nplain line\r\n\t leading\r\n',
  'trailing white space on lines': 'end with space \r\nend with tab\t\r\nlast  ',
  'white space after the last line, no CRLF': 'x\r\n  ',
  'a dot-stuffing candidate and 8-bit bytes': '.leading dot\r\nh\xe9llo \xff\r\n',
  'base64 of a 100 KB attachment': `${Buffer.alloc(76 * 1400, 7).toString('base64').replace(/(.{76})/g, '$1\r\n')}\r\n`,
};

for (const [name, body] of Object.entries(bodies)) {
  test(`the relaxed body hash matches RFC 6376 3.4.4: ${name}`, () => {
    const expected = createHash('sha256').update(Buffer.from(referenceRelaxedBody(body), 'latin1')).digest('base64');
    assert.equal(relaxedBodyHash(Buffer.from(body, 'latin1')), expected);
  });
}

for (const [type, pairOfType] of [['rsa', rsa], ['ed25519', ed25519]] as const) {
  test(`${type}: signatures verify with mailauth over every canonicalization case, and a changed body or signed field fails`, async () => {
    const header = 'From:  Shop\t<shop@example.com> \r\nTo: a@x.test,\r\n\tb@x.test\r\nSubject: folded\r\n  over two lines\r\nsubject: second subject field\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n';
    for (const [name, body] of Object.entries(bodies)) {
      const signed = await dkimSign(Buffer.from(`${header}\r\n${body}`, 'latin1'), key(pairOfType.pem));
      assert.equal(await verdict(signed, pairOfType.record), 'pass', name);
    }
    const signed = await dkimSign(message, key(pairOfType.pem));
    const tampered = Buffer.from(signed.toString('latin1').replace('\r\n\r\nbody', '\r\n\r\nBody'), 'latin1');
    assert.match(await verdict(tampered, pairOfType.record), /^(fail|neutral) \(body hash did not verify\)/);
    const otherSubject = Buffer.from(signed.toString('latin1').replace('Subject: Offer', 'Subject: Offer!'), 'latin1');
    assert.match(await verdict(otherSubject, pairOfType.record), /^fail \(bad signature\)$/);
  });
}

test('relaxed header canonicalization removes only spaces and tabs: 8-bit values keep every byte', () => {
  // "voilà" in raw UTF-8 ends in byte 0xA0, which JavaScript's trim() would take as a no-break space.
  const latin1 = (utf8: string) => Buffer.from(utf8, 'utf8').toString('latin1');
  assert.equal(relaxedHeader(`Subject: ${latin1('voilà')} \r\n`), `subject:${latin1('voilà')}`);
  assert.equal(relaxedHeader(`Subject \t:  a \t b\r\n\t${latin1('Р')}\r\n`), `subject:a b ${latin1('Р')}`);
  assert.equal(relaxedHeader('X-A:\x0bv\x0c\r\n'), 'x-a:\x0bv\x0c', 'vertical tab and form feed are not WSP');
});

test('From, Subject and the other identity fields are oversigned: one added above the signed ones fails', async () => {
  const signed = await dkimSign(message, key(rsa.pem));
  const names = /\bh=([^;]+)/.exec(signed.toString().replace(/\r\n[ \t]/g, ' '))![1]!.split(':').map((f) => f.trim().toLowerCase());
  assert.equal(names.filter((n) => n === 'from').length, 2);
  assert.ok(names.includes('reply-to'), 'an absent Reply-To is listed, so none can be added');
  assert.equal(await verdict(signed, rsa.record), 'pass');
  const secondFrom = Buffer.concat([Buffer.from('From: Attacker <evil@example.net>\r\n'), signed]);
  assert.match(await verdict(secondFrom, rsa.record), /^fail/);
});

test('the signature covers List-Unsubscribe-Post and never Bcc, and the message follows it unchanged', async () => {
  const signed = (await dkimSign(message, key(rsa.pem))).toString();
  const field = /^DKIM-Signature: (.*(?:\r\n[ \t].*)*)/m.exec(signed)![1]!.replace(/\r\n[ \t]/g, ' ');
  const signedFields = /\bh=([^;]+)/.exec(field)![1]!.split(':').map((f) => f.trim().toLowerCase());
  assert.ok(signedFields.includes('list-unsubscribe-post') && signedFields.includes('list-unsubscribe'), signedFields.join(', '));
  assert.ok(!signedFields.includes('bcc'));
  assert.match(field, /^v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com; s=s1; /);
  assert.ok(signed.endsWith(message.toString()), 'the message follows its signature unchanged');
  for (const line of signed.split('\r\n')) assert.ok(line.length <= 78, `a line of ${line.length} characters: ${line}`);
});

test('a key that cannot sign is refused with the reason, not with a silent unsigned message', async () => {
  const broken = `${ed25519.pem.slice(0, 60)}broken${ed25519.pem.slice(60)}`;
  await assert.rejects(dkimSign(message, key(broken)), /^Error: DKIM signing for example\.com \(selector s1\) failed: ./);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await assert.rejects(dkimSign(message, key(ec)), /failed: a ec key cannot sign DKIM \(RSA or Ed25519 only\)/);
});
