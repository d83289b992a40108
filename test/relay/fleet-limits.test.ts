// Limits that hold across the fleet: two real relay processes on one real broker share a
// key's sending limits, the sandbox quota and the AUTH throttle through <prefix>.usage, and
// a restarted relay still knows what was sent.
// @needs kafka processes
// @limit 120s
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { testKafka } from '../helpers/env.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey, signedDomainYaml } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';

const prefix = `limits-${randomBytes(4).toString('hex')}`;
const limitedKey = newApiKey();
const sandboxKey = newApiKey();
const burstKey = newApiKey();
const account = accountFolder(newApiKey());
account.write('limited.yaml', apiKeyYaml('acme', 'limited', limitedKey, { limits: { messagesPerHour: 5, recipientsPerMessage: 3 } }));
account.write('sandbox-user.yaml', apiKeyYaml('acme', 'trial', sandboxKey));
account.write('burst.yaml', apiKeyYaml('acme', 'burst', burstKey, { limits: { messagesPerDay: 20 } }));
account.write('sandbox.yaml', signedDomainYaml('mtrelay-system', 'sandbox', 'sandbox.test'));
const args = ['--allow-auth-without-tls', '--topic-prefix', prefix, '--proxy-protocol', '127.0.0.1', '--sandbox-domain', 'sandbox.test', '--sandbox-quota', '2',
  '--auth-slow-after', '100', '--auth-block-after', '3', '--auth-window', '600'];
const start = () => RelayProcess.start({ resources: account.dir, kafka: testKafka(), args });
let a: RelayProcess;
let b: RelayProcess;

before(async () => {
  [a, b] = await Promise.all([start(), start()]);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

/** A session through the PROXY protocol as `client`, logged in with `key`. */
async function session(relay: RelayProcess, key: string, client = '192.0.2.10'): Promise<RawSmtp> {
  const smtp = await RawSmtp.connect(relay.ports.submission);
  await smtp.write(`PROXY TCP4 ${client} 127.0.0.1 40000 587\r\n`);
  assert.match((await smtp.reply()) ?? '', /^220 /);
  assert.match((await smtp.login(key)) ?? '', /^235 /);
  return smtp;
}

/** MAIL, RCPTs (every reply), and when all were taken, DATA with `headers`: all replies in order. */
async function transaction(smtp: RawSmtp, recipients: string[], headers = 'From: app@example.com\r\n'): Promise<string[]> {
  const replies = [(await smtp.command('MAIL FROM:<bounces@example.com>'))!];
  if (!replies[0]!.startsWith('250')) return replies;
  for (const rcpt of recipients) replies.push((await smtp.command(`RCPT TO:<${rcpt}>`))!);
  if (replies.some((r) => !r.startsWith('250'))) {
    await smtp.command('RSET');
    return replies;
  }
  await smtp.command('DATA');
  await smtp.write(`${headers}Subject: limits\r\n\r\nbody\r\n.\r\n`);
  replies.push((await smtp.reply())!);
  return replies;
}

const rcpts = (n: number) => Array.from({ length: n }, (_, i) => `r${i}@recipient.test`);

/** Polls until `relay` holds what another relay counted (at most 10 s); returns how long that took. */
async function untilShared(relay: RelayProcess, counters: number, since: number): Promise<number> {
  while ((await relay.metric('mtrelay_relay_usage_counters')) < counters) {
    if (Date.now() - since > 10_000) throw new Error(`the relay holds ${await relay.metric('mtrelay_relay_usage_counters')} counters, not ${counters}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - since;
}

test("a key's recipients per message: 452 4.5.3 at the RCPT past it, 550 5.5.3 when X-MT-ATTR takes the message past it", async () => {
  const smtp = await session(a, limitedKey);
  const replies = await transaction(smtp, rcpts(4));
  assert.deepEqual(replies.slice(1, 4).map((r) => r.slice(0, 3)), ['250', '250', '250']);
  assert.equal(replies[4], '452 4.5.3 Too many recipients: API key acme/limited allows 3 per message; send the others in another transaction');
  const withAttr = await transaction(smtp, rcpts(2), 'From: app@example.com\r\nX-MT-ATTR: {"cc":[{"email":"c1@recipient.test"},{"email":"c2@recipient.test"}]}\r\n');
  assert.equal(withAttr.at(-1), '550 5.5.3 Message has 4 recipients with X-MT-ATTR cc, bcc and archive; API key acme/limited allows 3 per message');
  smtp.close();
  assert.equal(await a.metric('mtrelay_relay_limit_refusals_total', { limit: 'recipients_per_message' }), 2);
});

test('messages per hour hold across two relays and a restart: one message per recipient, 451 4.7.1 past the limit', async () => {
  const first = await session(a, limitedKey);
  assert.match((await transaction(first, rcpts(3))).at(-1)!, /^250 2\.0\.0 OK \d+$/, 'refused messages above took nothing');
  first.close();
  const lagMs = await untilShared(b, 1, Date.now());

  const second = await session(b, limitedKey);
  const past = await transaction(second, ['x@recipient.test', 'y@recipient.test', 'z@recipient.test']);
  assert.match(past[3]!, /^451 4\.7\.1 Sending limit of API key acme\/limited reached: 5 messages per hour; room for 1 more in 3[56]\d\d seconds$/,
    'the third recipient would be the sixth message of the hour');
  assert.match((await transaction(second, ['x@recipient.test', 'y@recipient.test'])).at(-1)!, /^250 /);
  assert.match((await transaction(second, ['w@recipient.test']))[0]!, /^451 4\.7\.1 Sending limit of API key acme\/limited reached: 5 messages per hour; room for 1 more in \d+ seconds$/,
    'refused at MAIL FROM once the hour is full');
  second.close();
  assert.ok(await b.metric('mtrelay_relay_limit_refusals_total', { limit: 'messages_per_hour' }) >= 2);

  const since = Date.now();
  for (;;) {
    const smtp = await session(a, limitedKey);
    const mail = (await smtp.command('MAIL FROM:<bounces@example.com>'))!;
    smtp.close();
    if (mail.startsWith('451 4.7.1')) break;
    assert.ok(Date.now() - since < 10_000, `relay A still takes mail: ${mail}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  await a.stop();
  a = await start();
  const restarted = await session(a, limitedKey);
  assert.match((await restarted.command('MAIL FROM:<bounces@example.com>'))!, /^451 4\.7\.1 /, 'a restarted relay loads the counts before it listens');
  restarted.close();
  console.log(`# a count published by one relay was seen by the other after ${lagMs} ms`);
});

test('the sandbox quota counts recipients across relays', async () => {
  const smtp = await session(a, sandboxKey);
  assert.match((await transaction(smtp, rcpts(2), 'From: trial@sandbox.test\r\n')).at(-1)!, /^250 /);
  smtp.close();
  await untilShared(b, 2, Date.now()); // the key's counter from the test before, and the sandbox's
  const other = await session(b, sandboxKey);
  assert.equal((await transaction(other, rcpts(1), 'From: trial@sandbox.test\r\n')).at(-1),
    '550 5.7.1 Sandbox domain limit of 2 messages per 24 hours reached for account acme; create a SendingDomain to send more');
  assert.match((await transaction(other, rcpts(1))).at(-1)!, /^250 /, 'the account\'s own domain is not limited by the sandbox quota');
  other.close();
});

test('failed AUTHs on one relay block the address on the other', async () => {
  const attacker = '203.0.113.9';
  for (let i = 0; i < 3; i++) {
    const smtp = await RawSmtp.connect(a.ports.submission);
    await smtp.write(`PROXY TCP4 ${attacker} 127.0.0.1 40000 587\r\n`);
    await smtp.reply();
    assert.equal(await smtp.login(newApiKey()), '535 5.7.8 Sorry.');
    smtp.close();
  }
  const since = Date.now();
  for (;;) {
    const smtp = await RawSmtp.connect(b.ports.submission);
    await smtp.write(`PROXY TCP4 ${attacker} 127.0.0.1 40000 587\r\n`);
    const greeting = (await smtp.reply()) ?? '';
    smtp.close();
    if (greeting.startsWith('421')) {
      assert.match(greeting, /^421 4\.7\.0 Too many failed authentications from 203\.0\.113\.9; try again in (59\d|60\d|610) seconds$/);
      break;
    }
    assert.ok(Date.now() - since < 10_000, `relay B still greets the address: ${greeting}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const other = await session(b, burstKey, '203.0.113.10');
  other.close();
});

test('a steady stream through both relays: each takes only the room left by what it has seen, and the overshoot is what it had not seen yet', async () => {
  // Twenty per day; thirty messages to each relay, one every 200 ms (6 s).
  const LIMIT = 20;
  const SEEN_WITHIN_MS = 3000; // documented: about 1.5 s; twice that for a busy test machine
  const send = async (relay: RelayProcess) => {
    const smtp = await session(relay, burstKey, '192.0.2.20');
    const results: { reply: string; at: number }[] = [];
    for (let i = 0; i < 30; i++) {
      const next = Date.now() + 200;
      results.push({ reply: (await transaction(smtp, [`burst${i}@recipient.test`])).at(-1)!, at: Date.now() });
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
    smtp.close();
    return results;
  };
  const [fromA, fromB] = await Promise.all([send(a), send(b)]);
  const all = [...fromA, ...fromB];
  const accepted = all.filter((r) => r.reply.startsWith('250')).length;
  assert.equal(accepted + all.filter((r) => r.reply.startsWith('451 4.7.1')).length, 60, all.map((r) => r.reply).join('\n'));
  // A relay that answered 250 had room for it in what it had seen: its own earlier messages,
  // and the other relay's older than SEEN_WITHIN_MS.
  for (const [own, other] of [[fromA, fromB], [fromB, fromA]] as const) {
    for (const message of own.filter((r) => r.reply.startsWith('250'))) {
      const seen = own.filter((r) => r.reply.startsWith('250') && r.at < message.at).length
        + other.filter((r) => r.reply.startsWith('250') && r.at < message.at - SEEN_WITHIN_MS).length;
      assert.ok(seen < LIMIT, `a 250 at ${message.at} with ${seen} messages of the day already seen`);
    }
  }
  assert.ok(accepted >= LIMIT && accepted < 2 * LIMIT, `accepted ${accepted}`);
  console.log(`# 60 messages at 10/s against a limit of ${LIMIT} through two relays: ${accepted} accepted (overshoot ${accepted - LIMIT})`);
  for (const relay of [a, b]) {
    const smtp = await session(relay, burstKey, '192.0.2.20');
    assert.match((await smtp.command('MAIL FROM:<bounces@example.com>'))!, /^451 4\.7\.1 Sending limit of API key acme\/burst reached: 20 messages per 24 hours; /);
    smtp.close();
  }
});
