// The seed's cc/bcc/archive rules, on the bytes each recipient would receive.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import libmime from 'libmime';
import { fanOut, type Copy } from '../../deliverer/fan-out.ts';
import { addressparser } from '../../shared/mail/nodemailer-internals.ts';
import { EMPTY_ATTRIBUTES } from '../../shared/attributes/x-mt-attr.ts';
import type { Submission } from '../../shared/submission-record.ts';

const raw = Buffer.from([
  'Date: Thu, 26 Nov 2026 05:00:00 +0000', 'Message-ID: <order-1@example.com>', 'From: Shop <shop@example.com>', 'To: Customer <customer@recipient.test>', 'Cc: old@recipient.test',
  'Bcc: leaked@recipient.test', 'Subject: Your order',
  'X-MT-ATTR: {"cc":["boss@recipient.test"],', ' "bcc":["audit@recipient.test"]}', '', 'Thanks!', '',
].join('\r\n'));

function submission(attributes: Partial<Submission['attributes']>, rcptTo = ['customer@recipient.test']): Submission {
  return {
    transmissionId: '1', namespace: 'acme', apiKeyId: 'acme/app', mailFrom: 'shop@example.com', rcptTo,
    sendingDomain: 'example.com', attributes: { ...EMPTY_ATTRIBUTES, ...attributes }, receivedAt: '2026-11-26T05:00:01.000Z', clientAddress: '192.0.2.7', tls: 'TLSv1.3',
  };
}

/** A copy's bytes as the recipient receives them (unsigned): its pieces joined. */
const copyBytes = (copy: Copy) => Buffer.concat([copy.header, copy.body]);
const headers = (c: Copy) => copyBytes(c).toString().split('\r\n\r\n')[0]!;

test('one copy per envelope recipient and per cc, bcc and archive address', () => {
  const copies = fanOut(raw, submission({
    cc: [{ email: 'boss@recipient.test' }, { email: 'peer@recipient.test', name: 'Peer, P.' }],
    bcc: [{ email: 'audit@recipient.test' }, { email: 'legal@recipient.test' }],
    archive: [{ email: 'archive@recipient.test' }],
  }));
  assert.deepEqual(copies.map((c) => [c.rcptTo, c.rcptType]), [
    ['customer@recipient.test', 'to'], ['boss@recipient.test', 'cc'], ['peer@recipient.test', 'cc'],
    ['audit@recipient.test', 'bcc'], ['legal@recipient.test', 'bcc'], ['archive@recipient.test', 'archive'],
  ]);
  for (const copy of copies) {
    const h = headers(copy);
    assert.match(h, /^To: Customer <customer@recipient\.test>$/m, 'the sender\'s To is kept');
    assert.match(h, /^Cc: boss@recipient\.test, "Peer, P\." <peer@recipient\.test>$/m, 'every copy shows all cc addresses');
    assert.doesNotMatch(h, /old@recipient\.test/, 'the cc list replaces the message\'s own Cc');
    assert.doesNotMatch(h, /^X-MT-ATTR/im, 'X-MT-ATTR is removed');
    assert.doesNotMatch(h, /leaked@recipient\.test/, 'a Bcc in the message never reaches anyone');
    assert.ok(copyBytes(copy).toString().endsWith('\r\n\r\nThanks!\r\n'));
  }
  const bccHeaders = copies.map((c) => headers(c).match(/^Bcc: .*$/gm) ?? []);
  assert.deepEqual(bccHeaders, [[], [], [], ['Bcc: audit@recipient.test'], ['Bcc: legal@recipient.test'], []]);
});

test('an address listed more than once gets one copy, with its first role', () => {
  const copies = fanOut(raw, submission({
    cc: [{ email: 'Customer@Recipient.test' }, { email: 'twice@recipient.test' }],
    bcc: [{ email: 'twice@recipient.test' }, { email: 'bcc@recipient.test' }, { email: 'bcc@recipient.test' }],
    archive: [{ email: 'bcc@recipient.test' }],
  }));
  assert.deepEqual(copies.map((c) => [c.rcptTo, c.rcptType]), [
    ['customer@recipient.test', 'to'], ['twice@recipient.test', 'cc'], ['bcc@recipient.test', 'bcc'],
  ]);
});

test('without a cc list the message\'s own Cc is kept; other headers keep their bytes; a Received trace field and the transmission lead', () => {
  const [copy] = fanOut(raw, submission({}));
  assert.equal(copyBytes(copy!).toString(), 'Received: from [192.0.2.7] by mtrelay with ESMTPSA id 1;\r\n Thu, 26 Nov 2026 05:00:01 +0000\r\n' +
    'X-MT-Transmission: 1; namespace=acme\r\n' + raw.toString()
    .replace('Bcc: leaked@recipient.test\r\n', '')
    .replace('X-MT-ATTR: {"cc":["boss@recipient.test"],\r\n "bcc":["audit@recipient.test"]}\r\n', ''));
});

test('a long cc list is folded between addresses', () => {
  const cc = Array.from({ length: 30 }, (_, i) => ({ email: `person${i}@recipient.test` }));
  const [copy] = fanOut(raw, submission({ cc }));
  const field = /^Cc: [\s\S]*?\r\n(?![ \t])/m.exec(copyBytes(copy!).toString())![0];
  assert.ok(field.split('\r\n').every((line) => line.length <= 78), field);
  assert.equal(field.replace(/\r\n[ \t]/g, ' ').trim().replace(/\s+/g, ' '), `Cc: ${cc.map((c) => c.email).join(', ')}`);
});

test('a missing Message-ID and Date are added; names that are not ASCII are encoded whole', () => {
  const bare = Buffer.from('From: shop@example.com\r\nTo: x@recipient.test\r\n\r\nHi\r\n');
  const [copy] = fanOut(bare, submission({ cc: [{ email: 'j@recipient.test', name: 'Smith, Jörg' }] }));
  const h = headers(copy!);
  assert.match(h, /^Message-ID: <1@example\.com>$/m);
  assert.match(h, /^Date: Thu, 26 Nov 2026 05:00:01 \+0000$/m);
  const cc = /^Cc: (.*)$/m.exec(h)![1]!;
  assert.doesNotMatch(cc.replace(/<[^>]+>$/, ''), /,/, `the comma stays inside the encoded name: ${cc}`);
  assert.match(cc, /^=\?UTF-8\?Q\?.*\?= <j@recipient\.test>$/);
});

test('a cc name that is not ASCII is one encoded word: its commas and brackets cannot split the address', () => {
  const [copy] = fanOut(raw, submission({ cc: [{ email: 'boss@recipient.test', name: 'Zoë <Boss>, Chief' }] }));
  const field = /^Cc: (.*(?:\r\n[ \t].*)*)$/m.exec(headers(copy!))![1]!;
  assert.match(field, /^=\?UTF-8\?Q\?/);
  assert.deepEqual(addressparser(field).map((a) => [libmime.decodeWords(a.name), a.address]), [['Zoë <Boss>, Chief', 'boss@recipient.test']]);
});

test("a client's own X-MT-Transmission is replaced: bounces and complaints are matched by the deliverer's", () => {
  const forged = Buffer.from('X-MT-Transmission: 999; namespace=victim\r\nFrom: shop@example.com\r\n\r\nhi\r\n');
  const text = copyBytes(fanOut(forged, submission({}))[0]!).toString();
  assert.deepEqual(text.match(/^X-MT-Transmission: .*$/gm), ['X-MT-Transmission: 1; namespace=acme']);
});

test('a message that is all header gets the empty line that ends it (found by the fuzzer: a verifier missed the signature)', () => {
  const [copy] = fanOut(Buffer.from('From: Shop <shop@example.com>\r\nSubject: no body\r\n'), submission({}));
  assert.equal(copy!.body.toString(), '\r\n');
  assert.match(copyBytes(copy!).toString(), /\r\nSubject: no body\r\n\r\n$/);
});
