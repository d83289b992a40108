// Kafka as managed services and Strimzi run it: a relay produces through a SASL_SSL listener
// (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN) and a deliverer consumes through a listener that
// requires a client certificate, so a message goes from swaks to a mailbox over both.
// Misconfigured connections fail with a clear word.
// @needs kafka-own processes openssl swaks
// @limit 120s
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import { pino } from 'pino';
import { createKafka, kafkaConnection } from '../../shared/kafka/client.ts';
import { TopicSetupError, ensureTopics } from '../../shared/kafka/topics.ts';
import { DelivererProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { submitArgs, swaks } from '../helpers/swaks.ts';
import { createTestCa } from '../helpers/tls.ts';
import { KafkaBroker, freePort } from './broker.ts';

const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, ResourcePatternTypes, logLevel } = kafkajs; // CommonJS
const dir = tempDir('secure-kafka');
const ca = createTestCa();
const brokerCert = ca.issue('broker', ['127.0.0.1', 'localhost']);
const clientCert = ca.issue('deliverer-client', ['deliverer'], { usage: 'clientAuth' });
const passwordFile = path.join(dir, 'password');
writeFileSync(passwordFile, 'relay-secret\n');
const broker = new KafkaBroker({ dir, secure: { caFile: ca.caCert, certFile: brokerCert.cert, keyFile: brokerCert.key, user: { name: 'relay', password: 'relay-secret' } } });
const key = newApiKey();
const account = accountFolder(key);
let sink: SmtpSink;

before(async () => {
  await broker.start();
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
});
after(async () => {
  await sink?.close();
  await broker.stop();
});

test('swaks → relay over SASL_SSL with SCRAM-SHA-512 → deliverer over mutual TLS → the mailbox', async () => {
  const prefix = `secure${Date.now()}`;
  const relay = await RelayProcess.start({ resources: account.dir, kafka: broker.secureBootstrap.sasl, args: [
    '--allow-auth-without-tls', '--topic-prefix', prefix, '--kafka-tls-ca', ca.caCert,
    '--kafka-sasl-mechanism', 'scram-sha-512', '--kafka-sasl-username', 'relay', '--kafka-sasl-password-file', passwordFile,
  ] });
  const deliverer = await DelivererProcess.start({ resources: account.dir, kafka: broker.secureBootstrap.ssl, args: [
    '--topic-prefix', prefix, '--group-id', `g-${prefix}`, '--route', `*=127.0.0.1:${sink.port}`,
    '--kafka-tls-ca', ca.caCert, '--kafka-tls-cert', clientCert.cert, '--kafka-tls-key', clientCert.key,
  ] });
  try {
    const sent = await swaks(submitArgs({ port: relay.ports.submission, key, tls: 'none', to: 'secure@recipient.test' }));
    assert.match(sent.dataReply ?? '', /^250 2\.0\.0 OK \d+$/, sent.output);
    await sink.waitFor('secure@recipient.test');
  } finally {
    await Promise.all([relay.stop(), deliverer.stop()]);
  }
});

test('SCRAM-SHA-256 and PLAIN authenticate too; a wrong password or a missing client certificate is refused', async () => {
  const logger = pino({ level: 'silent' });
  const connect = async (flags: Parameters<typeof kafkaConnection>[0]) => {
    const admin = createKafka({ connection: kafkaConnection(flags), clientId: 'test', logger, requestTimeoutMs: 3000 }).admin();
    try {
      await admin.connect();
      await admin.listTopics();
      return 'ok';
    } catch (error) {
      return (error as Error).message;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  };
  const sasl = { kafka: broker.secureBootstrap.sasl, kafkaTlsCa: ca.caCert, kafkaSaslUsername: 'relay', kafkaSaslPasswordFile: passwordFile };
  assert.equal(await connect({ ...sasl, kafkaSaslMechanism: 'scram-sha-256' }), 'ok');
  assert.equal(await connect({ ...sasl, kafkaSaslMechanism: 'plain' }), 'ok');
  const wrong = path.join(dir, 'wrong');
  writeFileSync(wrong, 'not-the-password');
  assert.match(await connect({ ...sasl, kafkaSaslMechanism: 'scram-sha-512', kafkaSaslPasswordFile: wrong }), /SASL SCRAM SHA512 authentication failed|Authentication failed/i);
  assert.notEqual(await connect({ kafka: broker.secureBootstrap.ssl, kafkaTlsCa: ca.caCert }), 'ok', 'the SSL listener requires a client certificate');
  assert.throws(() => kafkaConnection({ kafka: 'k:9092', kafkaSaslMechanism: 'plain' }), /SASL needs --kafka-sasl-mechanism, --kafka-sasl-username and --kafka-sasl-password-file together/);
  assert.throws(() => kafkaConnection({ kafka: 'k:9092', kafkaTlsCert: 'c.pem' }), /--kafka-tls-cert and --kafka-tls-key go together/);
});

test('a principal the broker does not let create topics gets a refusal that names the topics and settings to create', async () => {
  const plain = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin(); // the super user
  await plain.connect();
  await plain.createAcls({ acl: [{
    resourceType: AclResourceTypes.TOPIC, resourceName: 'denied', resourcePatternType: ResourcePatternTypes.PREFIXED,
    principal: 'User:relay', host: '*', operation: AclOperationTypes.CREATE, permissionType: AclPermissionTypes.DENY,
  }] });
  await plain.disconnect();
  const admin = createKafka({ logger: pino({ level: 'silent' }), clientId: 'test', connection: kafkaConnection({
    kafka: broker.secureBootstrap.sasl, kafkaTlsCa: ca.caCert, kafkaSaslMechanism: 'scram-sha-512', kafkaSaslUsername: 'relay', kafkaSaslPasswordFile: passwordFile,
  }) }).admin();
  await admin.connect();
  try {
    const layout = { prefix: 'denied', partitions: 1, replicationFactor: -1, maxMessageBytes: 1_000_000, retryDelays: ['1m'] };
    await assert.rejects(ensureTopics(admin, layout, pino({ level: 'silent' })), (error: Error) => error instanceof TopicSetupError
      && /the broker refused to create topics \(TOPIC_AUTHORIZATION_FAILED\); create them yourself, or grant this principal Create on them: denied\.submissions \(max\.message\.bytes=1262144/.test(error.message));
  } finally {
    await admin.disconnect();
  }
});
