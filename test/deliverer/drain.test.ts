// SIGTERM on a deliverer: deliveries in flight finish, their offsets are committed before
// it leaves the group, and the next deliverer does not send them again.
// @needs kafka processes
// @limit 75s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { freePort } from '../kafka/broker.ts';
import { testKafka } from '../helpers/env.ts';
import { uncommitted } from '../helpers/kafka-reader.ts';
import { DelivererProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';

const prefix = `drain${Date.now()}`;
const key = newApiKey();
const account = accountFolder(key);
let sink: SmtpSink;
let relay: RelayProcess;
let args: string[];

before(async () => {
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  args = ['--topic-prefix', prefix, '--group-id', `g-${prefix}`, '--route', `*=127.0.0.1:${sink.port}`];
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--allow-auth-without-tls', '--topic-prefix', prefix] });
});
after(async () => {
  await relay?.stop();
  await sink?.close();
});

test('deliveries in flight at SIGTERM finish, are committed, and are not repeated by the next deliverer', async () => {
  const recipients = Array.from({ length: 6 }, (_, i) => `slow${i}@drain.test`);
  for (const r of recipients) sink.script.set(r, 'slow');
  const first = await DelivererProcess.start({ resources: account.dir, kafka: testKafka(), args });
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
  await Promise.all(recipients.map((to) => transport.sendMail({ from: 'a@example.com', to, subject: 'drain', text: 'x' })));
  transport.close();
  // Every message's data has arrived (so all six are in flight); their 250s take 1.5 s each.
  await Promise.all(recipients.map((r) => sink.waitFor(r)));

  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  for (const r of recipients) assert.equal(sink.for(r).length, 1, `${r} delivered before the deliverer exited`);
  assert.ok(!first.logs.some((l) => l.msg === 'offset commit failed'), JSON.stringify(first.logs.filter((l) => l.level === 40)));
  // Committed up to the end of every partition: nothing is left for the next member to deliver again.
  assert.deepEqual(await uncommitted(testKafka(), `g-${prefix}`, `${prefix}.submissions`), []);

  // The next member resumes from those offsets: a message sent now is the only one it delivers.
  const second = await DelivererProcess.start({ resources: account.dir, kafka: testKafka(), args });
  await second.waitForLog((l) => l.msg === 'deliverer joined the consumer group', 20_000);
  const marker = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
  await marker.sendMail({ from: 'a@example.com', to: 'after@drain.test', subject: 'after', text: 'x' });
  marker.close();
  await sink.waitFor('after@drain.test');
  await second.stop();
  for (const r of recipients) assert.equal(sink.for(r).length, 1, `${r} was not delivered again`);
});
