// --kafka-compression zstd: the relay's record batches reach the real broker compressed with
// zstd (this process reads them back through a codec that counts what it decompresses), and a
// deliverer that compresses nothing itself reads and delivers them byte for byte.
// @needs kafka processes
// @limit 60s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import nodemailer from 'nodemailer';
import '../../shared/kafka/compression.ts';
import { freePort } from '../kafka/broker.ts';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { DelivererProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { messageFactory } from '../bench/message.ts';

const prefix = `zstd${Date.now()}`;
const key = newApiKey();
const account = accountFolder(key);
let sink: SmtpSink;
let relay: RelayProcess;
let deliverer: DelivererProcess;
let reader: KafkaReader;
let zstdBatches = 0;

before(async () => {
  const { CompressionCodecs, CompressionTypes } = kafkajs;
  const ours = CompressionCodecs[CompressionTypes.ZSTD]!();
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({ ...ours, decompress: (buffer: Buffer) => (zstdBatches++, ours.decompress(buffer)) });
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--allow-auth-without-tls', '--topic-prefix', prefix, '--kafka-compression', 'zstd'] });
  reader = await KafkaReader.start(testKafka(), `${prefix}.submissions`);
  deliverer = await DelivererProcess.start({ resources: account.dir, kafka: testKafka(), args: ['--topic-prefix', prefix, '--group-id', `g-${prefix}`, '--route', `*=127.0.0.1:${sink.port}`] });
});
after(async () => {
  await Promise.all([relay?.stop(), deliverer?.stop(), reader?.stop()]);
  await sink?.close();
});

test('zstd-compressed submissions are stored compressed, read back whole, and delivered byte for byte', async () => {
  const message = messageFactory(102_400, 'shop@example.com', 'zstd@x.test')().subarray(0, -3); // without the final ".\r\n"
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
  const info = await transport.sendMail({ envelope: { from: 'shop@example.com', to: ['zstd@x.test'] }, raw: message });
  transport.close();
  const transmissionId = /^250 2\.0\.0 OK (\S+)/.exec(info.response)?.[1] ?? assert.fail(info.response);
  const stored = await reader.waitFor(transmissionId);
  assert.ok(zstdBatches > 0, 'the batch came from the broker zstd-compressed');
  assert.ok(stored.value.equals(message), 'stored as sent');
  const [delivered] = await sink.waitFor('zstd@x.test');
  assert.ok(delivered!.message.toString('latin1').endsWith(message.toString('latin1').slice(message.indexOf('\r\n\r\n'))), 'the body arrived as sent');
});
