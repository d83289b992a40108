// The relay creates its topics itself with explicit configs, and a message close to SIZE
// really fits through them.
// @needs kafka processes
// @limit 30s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';

const { ConfigResourceTypes, Kafka, logLevel } = kafkajs; // CommonJS: not every export is a named ESM export
const key = newApiKey();
const account = accountFolder(key);
const prefix = `t${Date.now()}`;
const maxSize = 12 * 1024 * 1024;
let relay: RelayProcess;

before(async () => {
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(),
    args: ['--allow-auth-without-tls', '--topic-prefix', prefix, '--partitions', '3', '--max-size', String(maxSize), '--retry-delays', '1m,10m'] });
});
after(async () => {
  await relay?.stop();
});

test('topics exist with the partitions and configs the relay chose', async () => {
  const kafka = new Kafka({ brokers: [testKafka()], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const names = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`)).sort();
    assert.deepEqual(names, [`${prefix}.dead-letter`, `${prefix}.events`, `${prefix}.retry.10m`, `${prefix}.retry.1m`, `${prefix}.submissions`, `${prefix}.suppressions`]);
    const metadata = await admin.fetchTopicMetadata({ topics: [`${prefix}.submissions`] });
    assert.equal(metadata.topics[0]!.partitions.length, 3);
    const configs = await admin.describeConfigs({ includeSynonyms: false, resources: [
      { type: ConfigResourceTypes.TOPIC, name: `${prefix}.submissions` },
      { type: ConfigResourceTypes.TOPIC, name: `${prefix}.suppressions` },
    ] });
    const value = (topic: string, name: string) =>
      configs.resources.find((r) => r.resourceName === topic)!.configEntries.find((e) => e.configName === name)!.configValue;
    assert.equal(value(`${prefix}.submissions`, 'max.message.bytes'), String(maxSize + 256 * 1024));
    assert.equal(value(`${prefix}.submissions`, 'retention.ms'), String(7 * 24 * 3600 * 1000));
    assert.equal(value(`${prefix}.suppressions`, 'cleanup.policy'), 'compact');
  } finally {
    await admin.disconnect();
  }
});

test('a message just under SIZE is stored whole', async () => {
  const reader = await KafkaReader.start(testKafka(), `${prefix}.submissions`, false); // the relay made them
  try {
    const body = `${'z'.repeat(998)}\r\n`.repeat(Math.floor((maxSize - 1024) / 1000));
    const message = `From: sender@example.com\r\nSubject: big\r\n\r\n${body}`;
    assert.ok(message.length < maxSize && message.length > maxSize - 20_000);
    const smtp = await RawSmtp.connect(relay.ports.submission);
    await smtp.reply();
    await smtp.login(key);
    await smtp.command(`MAIL FROM:<sender@example.com> SIZE=${message.length}`);
    await smtp.command('RCPT TO:<x@recipient.test>');
    await smtp.command('DATA');
    await smtp.write(`${message}.\r\n`);
    const id = /OK (\d+)$/.exec((await smtp.reply(30_000)) ?? '')?.[1];
    assert.ok(id);
    smtp.close();
    const record = await reader.waitFor(id, 30_000);
    assert.equal(record.value.length, message.length);
  } finally {
    await reader.stop();
  }
});
