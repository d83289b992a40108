// Random SMTP sessions for the relay fuzzer: mostly shaped by the grammar (EHLO, AUTH, MAIL,
// RCPT, DATA with headers, X-MT-ATTR and bodies that are often almost right), sometimes plain
// noise, so that both the parser's edges and the checks behind a valid transaction are reached.
import fc from 'fast-check';

export type Step =
  | { kind: 'line'; line: string }
  | { kind: 'auth-login'; user: string; password: string }
  | { kind: 'data'; message: string }
  | { kind: 'quit' };

export interface Session {
  greeting: string;
  /** AUTH PLAIN with the real key first, so that most sessions reach MAIL, RCPT and DATA. */
  login: boolean;
  steps: Step[];
}

const printable = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });
/** Bytes a client may send in a line, controls and 8-bit included; no CR or LF (the line ends there). */
const anyLineBytes = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0, max: 0xff }).filter((c) => c !== 0x0a && c !== 0x0d).map((c) => String.fromCharCode(c)), maxLength });

const domain = fc.oneof(fc.domain(), fc.constantFrom('example.com', 'recipient.test', '[127.0.0.1]', '[IPv6:::1]', 'xn--bcher-kva.example', 'a..b', '-bad.example', ''));
const localPart = fc.oneof(fc.stringMatching(/^[a-z0-9._%+!-]{1,20}$/), fc.constantFrom('"quoted@part"', '"a b"', 'postmaster', 'a%b', 'b!a', ''), printable(30));
const address = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(localPart, domain).map(([l, d]) => `${l}@${d}`) },
  { weight: 1, arbitrary: fc.constantFrom('', 'postmaster', '@a.example:user@b.example', 'user@a@b', 'user@', '@b', '<nested>') },
  { weight: 1, arbitrary: printable(60) },
);
const parameter = fc.oneof(fc.constantFrom('', ' SIZE=100', ' SIZE=99999999999', ' SIZE=x', ' BODY=8BITMIME', ' BODY=BINARYMIME', ' SMTPUTF8', ' AUTH=<>',
  ' RET=FULL', ' ENVID=a+0D+0Ab', ' NOTIFY=NEVER', ' ORCPT=rfc822;a@b', ' =x', ' SIZE=1 SIZE=2'), printable(20).map((p) => ` ${p}`));
const base64 = (text: fc.Arbitrary<string>) => text.map((t) => Buffer.from(t, 'latin1').toString('base64'));

function command(key: string): fc.Arbitrary<Step> {
  const line = (text: fc.Arbitrary<string>) => text.map((l): Step => ({ kind: 'line', line: l }));
  return fc.oneof(
    { weight: 3, arbitrary: line(fc.tuple(address, parameter).map(([a, p]) => `MAIL FROM:<${a}>${p}`)) },
    { weight: 4, arbitrary: line(fc.tuple(address, parameter).map(([a, p]) => `RCPT TO:<${a}>${p}`)) },
    { weight: 3, arbitrary: messages().map((m): Step => ({ kind: 'data', message: m })) },
    { weight: 1, arbitrary: line(fc.constantFrom('RSET', 'NOOP', 'HELP', 'VRFY postmaster', 'EXPN list', 'STARTTLS', 'BDAT 10 LAST', 'TURN', 'ETRN x', 'DATA x', 'MAIL FROM: <a@b>', 'RCPT TO:a@b', 'MAIL', 'RCPT')) },
    { weight: 1, arbitrary: line(fc.tuple(fc.constantFrom('EHLO', 'HELO', 'ehlo', 'LHLO'), printable(40)).map(([c, a]) => `${c} ${a}`)) },
    { weight: 1, arbitrary: line(fc.oneof(base64(fc.tuple(printable(20), printable(20)).map(([u, p]) => `\0${u}\0${p}`)), printable(30), fc.constant('='), fc.constant(Buffer.from(`\0smtp_mt_injection\0${key}`).toString('base64')))
      .map((payload) => `AUTH PLAIN ${payload}`)) },
    { weight: 1, arbitrary: fc.tuple(printable(30), fc.oneof(printable(40), fc.constant(key))).map(([user, password]): Step => ({ kind: 'auth-login', user, password })) },
    { weight: 1, arbitrary: line(anyLineBytes(120)) },
    { weight: 1, arbitrary: line(fc.constantFrom('NOOP '.padEnd(1100, 'x'), 'X'.repeat(600))) },
  );
}

const attributes = fc.oneof(
  fc.constantFrom('{}', '{"campaign_id":"spring"}', '{"tags":["a","b"],"metadata":{"k":1}}', '{"cc":["c@recipient.test"],"bcc":[{"email":"b@recipient.test","name":"B"}]}',
    '{"optionsAttributes":{"openTracking":true,"clickTracking":false}}', '{"cc":"not a list"}', '{"archive":[{"email":"x"}]}', '{', '[]', 'null', '"text"',
    `{"tags":[${Array.from({ length: 50 }, (_, i) => `"t${i}"`).join(',')}]}`),
  fc.json({ maxDepth: 3 }),
  printable(80),
);

const header = fc.oneof(
  attributes.map((a) => `X-MT-ATTR: ${a}`),
  fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/), printable(120)).map(([n, v]) => `${n}: ${v}`),
  fc.constantFrom('Subject: =?UTF-8?B?w6TDtsO8?=', 'To: "A, B" <a@recipient.test>, group: x@y.test;', 'Content-Type: multipart/mixed; boundary=x', 'Message-ID: <id@example.com>',
    ' folded continuation', 'no colon here', ': empty name', `X-Long: ${'l'.repeat(1000)}`),
);

const from = fc.oneof(
  { weight: 6, arbitrary: fc.constant('From: Sender <sender@example.com>') },
  { weight: 1, arbitrary: fc.constantFrom('From: sender@elsewhere.test', 'From: a@example.com, b@example.com', 'From: undisclosed:;', 'From: =?UTF-8?Q?Z=C3=B6e?= <z@example.com>', 'From: <>', 'From:', '') },
  { weight: 1, arbitrary: address.map((a) => `From: ${a}`) },
);

const bodyLine = fc.oneof(
  { weight: 5, arbitrary: printable(100) },
  { weight: 1, arbitrary: fc.constantFrom('.', '..', '.leading dot', '\x00', 'MAIL FROM:<x@y>', '--x', '--x--', 'é'.repeat(10), 'x'.repeat(1200)) },
  { weight: 1, arbitrary: anyLineBytes(80) },
);

/** A message: From, some headers, an empty line, a body; line endings CRLF or, now and then, bare LF or CR. */
export function messages(): fc.Arbitrary<string> {
  return fc.tuple(from, fc.array(header, { maxLength: 4 }), fc.array(bodyLine, { maxLength: 12 }), fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r'))
    .map(([f, headers, body, eol]) => [...(f ? [f] : []), ...headers, '', ...body].join(eol));
}

/** MAIL, one to three RCPT and DATA in order, each mostly valid: what reaches the checks behind a 250. */
function transaction(): fc.Arbitrary<Step[]> {
  const sender = fc.oneof({ weight: 4, arbitrary: fc.constant('sender@example.com') }, { weight: 1, arbitrary: address });
  const recipient = fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9.]{1,12}$/).map((l) => `${l}@recipient.test`) }, { weight: 1, arbitrary: address });
  return fc.tuple(sender, fc.array(recipient, { minLength: 1, maxLength: 3 }), messages()).map(([mailFrom, rcpts, m]): Step[] => [
    { kind: 'line', line: `MAIL FROM:<${mailFrom}>` },
    ...rcpts.map((r): Step => ({ kind: 'line', line: `RCPT TO:<${r}>` })),
    { kind: 'data', message: m },
  ]);
}

export function sessions(key: string): fc.Arbitrary<Session> {
  const steps = fc.oneof({ weight: 3, arbitrary: transaction() }, { weight: 4, arbitrary: command(key).map((c) => [c]) });
  return fc.record({
    greeting: fc.oneof({ weight: 5, arbitrary: fc.constant('EHLO client.test') }, { weight: 1, arbitrary: fc.constantFrom('HELO client.test', 'EHLO', 'NOOP', 'MAIL FROM:<a@b>') }),
    login: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    steps: fc.tuple(fc.array(steps, { minLength: 1, maxLength: 6 }), fc.boolean()).map(([groups, quit]) => [...groups.flat(), ...(quit ? [{ kind: 'quit' } as Step] : [])]),
  });
}
