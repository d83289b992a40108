// The relay creates its topics itself with explicit configs, and a message close to SIZE
// really fits through them.
// @needs kafka processes
// @limit 45s
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import { pino } from 'pino';
import { effectiveReplication, ensureTopics, topicConfigs } from '../../shared/kafka/topics.ts';
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
    assert.deepEqual(names, [`${prefix}.dead-letter`, `${prefix}.events`, `${prefix}.retry.10m`, `${prefix}.retry.1m`, `${prefix}.submissions`, `${prefix}.suppressions`, `${prefix}.usage`]);
    const metadata = await admin.fetchTopicMetadata({ topics: [`${prefix}.submissions`] });
    assert.equal(metadata.topics[0]!.partitions.length, 3);
    const configs = await admin.describeConfigs({ includeSynonyms: false, resources: [
      { type: ConfigResourceTypes.TOPIC, name: `${prefix}.submissions` },
      { type: ConfigResourceTypes.TOPIC, name: `${prefix}.suppressions` },
      { type: ConfigResourceTypes.TOPIC, name: `${prefix}.usage` },
    ] });
    const value = (topic: string, name: string) =>
      configs.resources.find((r) => r.resourceName === topic)!.configEntries.find((e) => e.configName === name)!.configValue;
    assert.equal(value(`${prefix}.submissions`, 'max.message.bytes'), String(maxSize + 256 * 1024));
    assert.equal(value(`${prefix}.submissions`, 'retention.ms'), String(7 * 24 * 3600 * 1000));
    assert.equal(value(`${prefix}.suppressions`, 'cleanup.policy'), 'compact');
    assert.equal(value(`${prefix}.usage`, 'cleanup.policy'), 'compact,delete');
    assert.equal(value(`${prefix}.usage`, 'retention.ms'), String(25 * 3600 * 1000));
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

test('existing topics with settings that would refuse messages are found at start: the relay is not ready and says how to fix it', async () => {
  const bad = `bad${Date.now()}`;
  const kafka = new Kafka({ brokers: [testKafka()], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  // Made by someone else, too small for SIZE 12 MiB, and a suppressions topic that deletes.
  await ensureTopics(admin, { prefix: bad, partitions: 1, replicationFactor: -1, maxMessageBytes: 500_000, retryDelays: ['1m', '10m'] }, pino({ level: 'silent' }));
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: `${bad}.suppressions`, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] }] });
  await admin.disconnect();
  const misconfigured = new RelayProcess({ resources: account.dir, kafka: testKafka(),
    args: ['--topic-prefix', bad, '--partitions', '3', '--max-size', String(maxSize), '--retry-delays', '1m,10m'] });
  try {
    misconfigured.metricsPort = (await misconfigured.started('relay listening')).metricsPort as number;
    const problem = await misconfigured.waitForLog((l) => l.msg === 'Kafka topic would refuse or lose messages; not ready until it is fixed');
    assert.match(String(problem.problem), /max\.message\.bytes is 762144, below the 12845056 that SIZE 12582912 needs .*kafka-configs\.sh --alter --entity-type topics --entity-name bad\d+\.\S+ --add-config max\.message\.bytes=12845056/);
    await misconfigured.waitForLog((l) => l.msg === 'Kafka topic setting' && /fewer than --partitions 3/.test(String(l.problem)));
    const ready = await misconfigured.http('/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body, /^not ready: Kafka topic bad\d+\.submissions: max\.message\.bytes is 762144/);
    assert.ok(misconfigured.logs.some((l) => /cleanup\.policy is "delete", not compact/.test(String(l.problem))));
  } finally {
    await misconfigured.stop();
  }
});

test('with --no-create-topics, missing topics are named with their settings, and the relay waits for them', async () => {
  const absent = `absent${Date.now()}`;
  const waiting = new RelayProcess({ resources: account.dir, kafka: testKafka(), args: ['--topic-prefix', absent, '--no-create-topics', '--retry-delays', '1m'] });
  try {
    const refused = await waiting.waitForLog((l) => l.msg === 'Kafka topics cannot be set up; retrying');
    assert.match(JSON.stringify(refused.err), new RegExp(`topics missing, and creating them is switched off: create ${absent}\\.submissions \\(max\\.message\\.bytes=26476544`));
  } finally {
    await waiting.stop();
  }
});

test('min.insync.replicas is set where three replicas allow it, also when the replication is the broker default', async () => {
  const layout = { prefix: 'x', partitions: 1, replicationFactor: -1, maxMessageBytes: 1000, retryDelays: ['1m'] };
  const setting = (replication: number) => topicConfigs(layout, replication)[0]!.configEntries!.find((e) => e.name === 'min.insync.replicas')?.value;
  assert.equal(setting(3), '2');
  assert.equal(setting(1), undefined);
  const admin = new Kafka({ brokers: [testKafka()], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    assert.equal(await effectiveReplication(admin, layout), 1, 'the test broker\'s default.replication.factor');
    assert.equal(await effectiveReplication(admin, { ...layout, replicationFactor: 3 }), 3);
  } finally {
    await admin.disconnect();
  }
});
