// Replies from real mailbox providers, classified as SparkPost classifies them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BOUNCE_CLASS, classifyReply, isHardBounce, parseReply } from '../../deliverer/bounce-class.ts';

const classify = (reply: string) => {
  const { code, enhanced, text } = parseReply(reply);
  return classifyReply(code, enhanced, text);
};

test('replies seen from Gmail, Yahoo and others map to SparkPost bounce classes', () => {
  const cases: [string, number][] = [
    ['550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking', BOUNCE_CLASS.INVALID_RECIPIENT],
    ['554 delivery error: dd This user doesn\'t have a yahoo.com account', BOUNCE_CLASS.INVALID_RECIPIENT],
    ['550 5.1.1 <x@y.test>: Recipient address rejected: User unknown in virtual mailbox table', BOUNCE_CLASS.INVALID_RECIPIENT],
    ['552 5.2.2 The email account that you tried to reach is over quota', BOUNCE_CLASS.MAILBOX_FULL],
    ['552 5.3.4 Your message exceeded Google\'s message size limits', BOUNCE_CLASS.TOO_LARGE],
    ['550 5.7.1 Our system has detected that this message is likely unsolicited mail (spam)', BOUNCE_CLASS.SPAM_BLOCK],
    ['554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org', BOUNCE_CLASS.SPAM_BLOCK],
    ['550 5.7.26 Unauthenticated email is not accepted due to the sender\'s domain DMARC policy', BOUNCE_CLASS.MAIL_BLOCK],
    ['554 5.7.1 <x@y.test>: Relay access denied', BOUNCE_CLASS.RELAYING_DENIED],
    ['550 Requested action not taken', BOUNCE_CLASS.GENERIC],
    ['421 4.7.0 Try again later, closing connection.', BOUNCE_CLASS.MAIL_BLOCK],
    ['451 4.3.0 Temporary local problem', BOUNCE_CLASS.SOFT_BOUNCE],
    ['554 5.7.1 <a@b.test>: Recipient address rejected: Access denied', BOUNCE_CLASS.MAIL_BLOCK],
    ['550 5.7.1 Sender domain does not exist', BOUNCE_CLASS.MAIL_BLOCK],
    ['550 5.0.0 User unknown', BOUNCE_CLASS.INVALID_RECIPIENT],
  ];
  for (const [reply, expected] of cases) assert.equal(classify(reply), expected, reply);
});

test('only invalid-recipient classes are hard, so only they suppress the address', () => {
  assert.ok(isHardBounce(BOUNCE_CLASS.INVALID_RECIPIENT));
  assert.ok(isHardBounce(BOUNCE_CLASS.NO_RCPT));
  assert.ok(!isHardBounce(BOUNCE_CLASS.MAILBOX_FULL));
  assert.ok(!isHardBounce(BOUNCE_CLASS.SPAM_BLOCK));
});

test('replies are split into code, enhanced code and text', () => {
  assert.deepEqual(parseReply('550 5.1.1 No such user'), { code: 550, enhanced: '5.1.1', text: 'No such user' });
  assert.deepEqual(parseReply('250 OK'), { code: 250, text: 'OK' });
  assert.deepEqual(parseReply('garbage'), { code: 0, text: 'garbage' });
});
