// What a POST to an unsubscribe link asks for, in the encodings RFC 8058 allows, and the
// suppression an unsubscribe makes: for the account's mail not marked transactional.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unsubscribeOutcome, unsubscribeRequest } from '../../tracker/unsubscribe.ts';

test('one-click in a urlencoded or a multipart body; the page\'s button; anything else asks for nothing', () => {
  assert.equal(unsubscribeRequest('application/x-www-form-urlencoded', 'List-Unsubscribe=One-Click'), 'one_click');
  assert.equal(unsubscribeRequest(undefined, 'List-Unsubscribe=One-Click'), 'one_click');
  const multipart = '--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b--\r\n';
  assert.equal(unsubscribeRequest('multipart/form-data; boundary=b', multipart), 'one_click');
  assert.equal(unsubscribeRequest('application/x-www-form-urlencoded', 'unsubscribe=confirm'), 'confirmed');
  for (const body of ['', 'List-Unsubscribe=Two-Clicks', 'list-unsubscribe=one-click', 'unsubscribe=yes']) {
    assert.equal(unsubscribeRequest('application/x-www-form-urlencoded', body), undefined, body);
  }
});

test('an unsubscribe suppresses the recipient, lower-cased, for non-transactional mail of the token\'s account', () => {
  const claims = { kind: 'unsubscribe' as const, transmissionId: '42', rcptTo: 'Reader@Example.com', namespace: 'acme', expiresAt: 0, campaignId: 'weekly' };
  const { event, suppression } = unsubscribeOutcome(claims, 'one_click', { ip: '192.0.2.1', userAgent: 'UA' }, new Date('2026-11-30T10:00:00Z'));
  assert.deepEqual({ ...event, event_id: undefined }, {
    type: 'list_unsubscribe', event_id: undefined, timestamp: '2026-11-30T10:00:00.000Z', transmission_id: '42', namespace: 'acme',
    rcpt_to: 'Reader@Example.com', ip_address: '192.0.2.1', user_agent: 'UA', campaign_id: 'weekly',
  });
  assert.deepEqual(suppression, {
    namespace: 'acme', address: 'reader@example.com', source: 'unsubscribe', type: 'non_transactional', created: '2026-11-30T10:00:00.000Z',
    reason: 'unsubscribed with the mail client\'s unsubscribe button (RFC 8058 one-click)',
  });
  assert.equal(unsubscribeOutcome(claims, 'confirmed', { ip: '', userAgent: '' }).event.type, 'link_unsubscribe');
});
