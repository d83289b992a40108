// Large messages arriving together: the relay never hands the broker a batch bigger than the
// topic takes (max.message.bytes is SIZE plus framing), so each one is accepted.
// @needs kafka processes
// @limit 60s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';

const key = newApiKey();
const prefix = `large${Date.now()}`;
const SIZE = 2 * 1024 * 1024;
let relay: RelayProcess;
let kafka: KafkaReader;

before(async () => {
  relay = await RelayProcess.start({ resources: accountFolder(key).dir, kafka: testKafka(),
    args: ['--allow-auth-without-tls', '--topic-prefix', prefix, '--max-size', String(SIZE)] });
  // After the relay: its topics, with their limit from SIZE, must be the ones in use.
  kafka = await KafkaReader.start(testKafka(), `${prefix}.submissions`, false);
});
after(async () => {
  await Promise.all([relay?.stop(), kafka?.stop()]);
});

test('messages near SIZE sent at once are each answered 250 and stored', async () => {
  const line = `${'A'.repeat(76)}\r\n`;
  const text = line.repeat(Math.floor((SIZE * 0.7) / line.length)); // ~1.4 MB: two exceed the topic's limit together
  const send = (i: number) => nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } })
    .sendMail({ from: 'sender@example.com', to: `big${i}@recipient.test`, subject: `large ${i}`, text });
  const replies = await Promise.all([0, 1, 2, 3].map((i) => send(i).then((info) => info.response, (error: { response?: string }) => error.response ?? String(error))));
  for (const reply of replies) assert.match(reply, /^250 2\.0\.0 OK \d+$/);
  const ids = replies.map((r) => r.split(' ').at(-1)!);
  for (const id of ids) {
    const record = await kafka.waitFor(id);
    assert.ok(record.value.length > SIZE * 0.69, `stored whole: ${record.value.length} bytes`);
  }
});
