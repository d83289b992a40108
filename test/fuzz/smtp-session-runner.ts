// Plays a fuzzed session against a relay over TCP and checks every reply as it comes: the
// relay must answer each command in time with a well-formed reply (three digits, then a space
// or a dash on all but the last line), and with an enhanced status code (RFC 2034, RFC 3463)
// on every 2xx, 4xx and 5xx reply except the greeting and the answer to HELO or EHLO.
import assert from 'node:assert/strict';
import { RawSmtp } from '../helpers/smtp-raw.ts';
import type { Session, Step } from './smtp-sessions.ts';

export interface Transcript {
  /** Transmission ids of messages answered 250: each must be in the queue. */
  accepted: string[];
  lines: string[];
}

const REPLY_LINE = /^\d{3}(?:[ -].*)?$/;
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3}(?: |$)/;
const REPLY_TIMEOUT_MS = 15_000;

/** Checks one reply to `sent`; throws naming the session so far when it is wrong. */
export function checkReply(reply: string, sent: string, transcript: Transcript): void {
  const lines = reply.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    assert.match(line, REPLY_LINE, `malformed reply line to ${JSON.stringify(sent)}: ${JSON.stringify(line)}\n${transcript.lines.join('\n')}`);
    const last = i === lines.length - 1;
    assert.ok(last ? line.length === 3 || line[3] === ' ' : line[3] === '-', `continuation mark wrong in ${JSON.stringify(reply)}`);
  }
  const code = lines[0]!.slice(0, 3);
  const exempt = sent === '(greeting)' || /^(EHLO|HELO|LHLO)\b/i.test(sent) || !/^[245]/.test(code);
  if (!exempt) {
    for (const line of lines) {
      assert.match(line.slice(4), ENHANCED, `no enhanced status code in the reply to ${JSON.stringify(sent)}: ${JSON.stringify(line)}\n${transcript.lines.join('\n')}`);
      assert.equal(line.slice(4, 5), code[0], `enhanced code class differs from the reply code: ${JSON.stringify(line)}`);
    }
  }
}

async function exchange(client: RawSmtp, sent: string, payload: string, transcript: Transcript): Promise<string | undefined> {
  await client.write(payload);
  const reply = await client.reply(REPLY_TIMEOUT_MS);
  transcript.lines.push(`C: ${sent.slice(0, 200)}`, `S: ${reply ?? '(closed)'}`);
  if (reply !== undefined) checkReply(reply, sent, transcript);
  return reply;
}

async function step(client: RawSmtp, s: Step, transcript: Transcript): Promise<boolean> {
  switch (s.kind) {
    case 'line': {
      const reply = await exchange(client, s.line, `${s.line}\r\n`, transcript);
      // A line that opened something (AUTH asking for more, DATA) is closed again, so the next step is a command.
      if (reply?.startsWith('334')) return (await exchange(client, '* (cancel)', '*\r\n', transcript)) !== undefined;
      if (reply?.startsWith('354')) return (await exchange(client, '(empty data)', '.\r\n', transcript)) !== undefined;
      return reply !== undefined;
    }
    case 'quit':
      await exchange(client, 'QUIT', 'QUIT\r\n', transcript);
      return false;
    case 'auth-login': {
      let reply = await exchange(client, 'AUTH LOGIN', 'AUTH LOGIN\r\n', transcript);
      if (!reply?.startsWith('334')) return reply !== undefined;
      reply = await exchange(client, '(user)', `${Buffer.from(s.user, 'latin1').toString('base64')}\r\n`, transcript);
      if (!reply?.startsWith('334')) return reply !== undefined;
      return (await exchange(client, '(password)', `${Buffer.from(s.password, 'latin1').toString('base64')}\r\n`, transcript)) !== undefined;
    }
    case 'data': {
      const reply = await exchange(client, 'DATA', 'DATA\r\n', transcript);
      if (!reply?.startsWith('354')) return reply !== undefined;
      // Dot-stuffed as a client must; the relay sees the message's own bytes.
      const stuffed = s.message.replace(/(^|\r\n|\n|\r)\./g, '$1..');
      const end = await exchange(client, '(end of data)', `${stuffed}\r\n.\r\n`, transcript);
      const id = /^250 2\.0\.0 OK (\d+)$/.exec(end ?? '')?.[1];
      if (id) transcript.accepted.push(id);
      return end !== undefined;
    }
  }
}

/** Plays `session`; a closed connection ends it early (after a 421, say), which is allowed. */
export async function playSession(port: number, key: string, session: Session): Promise<Transcript> {
  const transcript: Transcript = { accepted: [], lines: [] };
  const client = await RawSmtp.connect(port);
  try {
    const greeting = await client.reply(REPLY_TIMEOUT_MS);
    assert.ok(greeting, 'no greeting');
    checkReply(greeting, '(greeting)', transcript);
    if (!(await exchange(client, session.greeting, `${session.greeting}\r\n`, transcript))) return transcript;
    if (session.login) {
      const payload = Buffer.from(`\0smtp_mt_injection\0${key}`).toString('base64');
      if (!(await exchange(client, 'AUTH PLAIN (the key)', `AUTH PLAIN ${payload}\r\n`, transcript))) return transcript;
    }
    for (const s of session.steps) if (!(await step(client, s, transcript))) break;
    return transcript;
  } finally {
    client.close();
  }
}
