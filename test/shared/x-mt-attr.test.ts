// X-MT-ATTR against the shipped schema: what is accepted, and the message for what is not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAttributes } from '../../shared/attributes/x-mt-attr.ts';
import { RefusalError } from '../../shared/smtp-replies.ts';

const problem = (value: string) => {
  try {
    parseAttributes(value, 5);
  } catch (error) {
    assert.ok(error instanceof RefusalError);
    assert.equal(error.code, 'MTR_ERR_ATTRIBUTES');
    return `${error.reply}: ${error.message}`;
  }
  return 'accepted';
};

test('the seed\'s example and the address forms are accepted and normalized', () => {
  assert.deepEqual(parseAttributes('{ "optionsAttributes" : { "openTracking" : true,"clickTracking" : true }}'), {
    openTracking: true, clickTracking: true, cc: [], bcc: [], archive: [], tags: [], metadata: {},
  });
  assert.deepEqual(parseAttributes('{"cc":["a@x.test",{"email":"b@x.test","name":"B"}],"campaign_id":"spring","metadata":{"order":7}}'), {
    cc: [{ email: 'a@x.test' }, { email: 'b@x.test', name: 'B' }], bcc: [], archive: [], campaignId: 'spring', tags: [], metadata: { order: 7 },
  });
});

test('each kind of mistake gets a message that names the field', () => {
  assert.match(problem('{"cc": ['), /^ATTR_JSON: JSON parsing error in X-MT-ATTR: /);
  assert.equal(problem('[]'), 'ATTR_SCHEMA: X-MT-ATTR value: must be object');
  assert.equal(problem('{"optionsAttributes":{"openTracking":1}}'), 'ATTR_SCHEMA: X-MT-ATTR optionsAttributes.openTracking: must be boolean');
  assert.equal(problem('{"optionsAttributes":{"opentracking":true}}'), 'ATTR_SCHEMA: X-MT-ATTR optionsAttributes.opentracking: is not a known field');
  assert.equal(problem('{"cc":[{"name":"no address"}]}'), 'ATTR_SCHEMA: X-MT-ATTR cc[0]: must be an email address, or an object {"email": …, "name": …}');
  assert.match(problem('{"bcc":[{"email":"a@x.test","name":"A\\r\\nBcc: evil@x.test"}]}'), /^ATTR_SCHEMA: X-MT-ATTR bcc\[0\]: /, 'no header injection through a name');
  assert.equal(problem('{"tags":["a","b","c","d","e","f","g","h","i","j","k"]}'), 'ATTR_SCHEMA: X-MT-ATTR tags: must NOT have more than 10 items');
  assert.equal(problem('{"cc":["a@x.test","b@x.test"],"bcc":["c@x.test","d@x.test"],"archive":["e@x.test","f@x.test"]}'),
    'ATTR_TOO_MANY_ADDRESSES: X-MT-ATTR cc, bcc, archive: 6 addresses exceed the limit of 5');
});
