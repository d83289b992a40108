// Every report of the corpus becomes what expected.json says, matched to its transmission,
// account and recipient; and what must not match does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reportOutcome } from '../../inbound/report-events.ts';
import { parseReport } from '../../inbound/report-parser.ts';
import { parseReportAddress, verpReturnPath } from '../../shared/mail/verp.ts';
import { domainLabel } from '../../shared/ops/domain-label.ts';
import { corpusFiles, expected, filled, type Fill } from './report-corpus.ts';

const BOUNCE_DOMAIN = 'bounces.example.com';
const fill: Fill = {
  transmissionId: '7391836152839123', namespace: 'acme', rcpt: 'Someone.Else@Recipient.test',
  bounceAddress: verpReturnPath('7391836152839123', ['Someone.Else@Recipient.test'], BOUNCE_DOMAIN), fblAddress: `fbl+example.com@${BOUNCE_DOMAIN}`,
};

test('the corpus and its expectations name the same files', () => {
  assert.deepEqual(corpusFiles, Object.keys(expected).sort());
});

for (const file of corpusFiles) {
  test(`${file}: ${expected[file]!.result}`, async () => {
    const want = expected[file]!;
    const envelopeTo = want.type === 'spam_complaint' ? fill.fblAddress : fill.bounceAddress;
    const address = parseReportAddress(envelopeTo, [BOUNCE_DOMAIN])!;
    const outcome = reportOutcome(await parseReport(filled(file, fill)), address, envelopeTo, new Date('2026-11-30T08:00:00Z'));
    assert.equal(outcome.result, want.result, outcome.detail);
    if (!want.type) {
      assert.deepEqual([outcome.events, outcome.suppressions], [[], []]);
      return;
    }
    assert.equal(outcome.events.length, 1, outcome.detail);
    const [event] = outcome.events;
    assert.equal(event!.type, want.type);
    assert.equal(event!.transmission_id, fill.transmissionId);
    assert.equal(event!.namespace, fill.namespace);
    assert.equal(event!.rcpt_to, fill.rcpt.toLowerCase());
    if (want.bounce_class !== undefined) assert.equal(event!.bounce_class, want.bounce_class, event!.raw_reason);
    if (want.error_code) assert.equal(event!.error_code, want.error_code);
    if (want.fbtype) assert.equal(event!.fbtype, want.fbtype);
    assert.ok(event!.sending_domain?.endsWith('example.com'), JSON.stringify(event));
    assert.deepEqual(outcome.suppressions.map((s) => [s.address, s.type ?? 'all']), want.suppressed ? [[fill.rcpt.toLowerCase(), want.suppressed]] : []);
  });
}

test('a report whose returned original names another transmission, or no account, is not matched', async () => {
  const envelopeTo = fill.bounceAddress;
  const address = parseReportAddress(envelopeTo, [BOUNCE_DOMAIN])!;
  const other = filled('gmail-no-such-account.eml', { ...fill, bounceAddress: verpReturnPath('111', [fill.rcpt], BOUNCE_DOMAIN) })
    .toString().replace(`X-MT-Transmission: ${fill.transmissionId}`, 'X-MT-Transmission: 222');
  assert.equal(reportOutcome(await parseReport(Buffer.from(other)), address, envelopeTo).result, 'unmatched');
  const anonymous = filled('gmail-no-such-account.eml', fill).toString().replace(/^X-MT-Transmission: .*\r\n/m, '');
  const outcome = reportOutcome(await parseReport(Buffer.from(anonymous)), address, envelopeTo);
  assert.deepEqual([outcome.result, outcome.events], ['unmatched', []]);
  assert.match(outcome.detail, /no X-MT-Transmission field/);
});

test("a report to one recipient's return path about another address is not matched: it cannot suppress that address", async () => {
  const envelopeTo = fill.bounceAddress;
  // Sent to Someone.Else's return path, about victim@recipient.test.
  const forged = filled('rfc3464-unknown-user.eml', { ...fill, rcpt: 'victim@recipient.test' });
  const outcome = reportOutcome(await parseReport(forged), parseReportAddress(envelopeTo, [BOUNCE_DOMAIN])!, envelopeTo);
  assert.deepEqual([outcome.result, outcome.suppressions], ['unmatched', []]);
  assert.match(outcome.detail, /return path was written for \(Someone\.Else@recipient\.test\)/);
});

test('return paths: VERP with the recipient, the shared one, feedback addresses; nothing else of the bounce domain', () => {
  assert.deepEqual(parseReportAddress('b+42+bob.smith=example.net@Bounces.Example.com', [BOUNCE_DOMAIN]), { kind: 'bounce', transmissionId: '42', recipientHint: 'bob.smith@example.net' });
  assert.deepEqual(parseReportAddress(verpReturnPath('42', ['a@x.test', 'b@x.test'], BOUNCE_DOMAIN), [BOUNCE_DOMAIN]), { kind: 'bounce', transmissionId: '42' });
  assert.deepEqual(parseReportAddress(`fbl@${BOUNCE_DOMAIN}`, [BOUNCE_DOMAIN]), { kind: 'feedback' });
  assert.deepEqual(parseReportAddress(`FBL+Example.com@${BOUNCE_DOMAIN}`, [BOUNCE_DOMAIN]), { kind: 'feedback', sendingDomain: 'example.com' });
  for (const stranger of [`postmaster@${BOUNCE_DOMAIN}`, `b+12x@${BOUNCE_DOMAIN}`, 'b+42@example.org', `someone%b+42@${BOUNCE_DOMAIN}`]) {
    assert.equal(parseReportAddress(stranger, [BOUNCE_DOMAIN]), undefined, stranger);
  }
});

test('unsubscribe@ a bounce domain is the unsubscribe address, in any case; other domains and local parts are not ours', () => {
  assert.deepEqual(parseReportAddress(`unsubscribe@${BOUNCE_DOMAIN}`, [BOUNCE_DOMAIN]), { kind: 'unsubscribe' });
  assert.deepEqual(parseReportAddress('Unsubscribe@Bounces.Example.com', [BOUNCE_DOMAIN]), { kind: 'unsubscribe' });
  assert.equal(parseReportAddress('unsubscribe@example.org', [BOUNCE_DOMAIN]), undefined);
  assert.equal(parseReportAddress(`unsubscribe+x@${BOUNCE_DOMAIN}`, [BOUNCE_DOMAIN]), undefined);
});

test('complaint label values: each sending domain as it is until 1000 are seen, then "other"; none is "unknown"', () => {
  const seen = new Set<string>();
  assert.equal(domainLabel(seen, 'example.com', 2), 'example.com');
  assert.equal(domainLabel(seen, undefined, 2), 'unknown');
  assert.equal(domainLabel(seen, 'forged.example', 2), 'other', 'past the bound');
  assert.equal(domainLabel(seen, 'example.com', 2), 'example.com', 'a domain already seen keeps its label');
});
