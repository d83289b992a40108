// The ACLs of the chart's Strimzi KafkaUser are what the roles need, on a real broker that
// enforces them: the chart's ACLs are granted to a SCRAM user (as Strimzi's User Operator
// would), and a relay and a deliverer connected as that user create their topics, accept a
// message and deliver it. What the ACLs do not grant is refused.
// @needs chart kafka-own processes openssl
// @limit 120s
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { createKafka, kafkaConnection } from '../../shared/kafka/client.ts';
import { KafkaBroker, freePort } from '../kafka/broker.ts';
import { DelivererProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { createTestCa } from '../helpers/tls.ts';
import { render } from './chart.ts';

const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, ResourcePatternTypes, logLevel } = kafkajs; // CommonJS
interface StrimziAcl { resource: { type: 'topic' | 'group' | 'cluster'; name?: string; patternType?: 'literal' | 'prefix' }; operations: string[] }

const dir = tempDir('kafka-user-acls');
const ca = createTestCa();
const brokerCert = ca.issue('broker', ['127.0.0.1', 'localhost']);
const passwordFile = path.join(dir, 'password');
writeFileSync(passwordFile, 'relay-secret\n');
// The broker's SCRAM user stands for the KafkaUser; Strimzi would name it after the release.
const broker = new KafkaBroker({ dir, secure: { caFile: ca.caCert, certFile: brokerCert.cert, keyFile: brokerCert.key, user: { name: 'relay', password: 'relay-secret' } } });
const prefix = `acl${Date.now()}`;
let sink: SmtpSink;

/** The KafkaUser's ACLs, as the chart renders them for a Strimzi install that lets mtrelay create its topics. */
function chartAcls(): StrimziAcl[] {
  const objects = render({ set: 'strimzi', values: ['kafka.strimzi.topics.enabled=false', `kafka.topicPrefix=${prefix}`] });
  const user = objects.find((o) => o.kind === 'KafkaUser');
  assert.ok(user, 'the chart renders a KafkaUser');
  return (user.spec as { authorization: { acls: StrimziAcl[] } }).authorization.acls;
}

before(async () => {
  await broker.start();
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  // Granted as Strimzi's User Operator grants them: one ALLOW per operation, for the user.
  const types = { topic: AclResourceTypes.TOPIC, group: AclResourceTypes.GROUP, cluster: AclResourceTypes.CLUSTER };
  const acl = chartAcls().flatMap(({ resource, operations }) => operations.map((operation) => ({
    resourceType: types[resource.type], resourceName: resource.type === 'cluster' ? 'kafka-cluster' : resource.name!,
    resourcePatternType: resource.patternType === 'prefix' ? ResourcePatternTypes.PREFIXED : ResourcePatternTypes.LITERAL,
    principal: 'User:relay', host: '*', permissionType: AclPermissionTypes.ALLOW,
    operation: AclOperationTypes[operation.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase() as keyof typeof AclOperationTypes],
  })));
  assert.ok(acl.every((a) => a.operation !== undefined), JSON.stringify(acl));
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin(); // the super user
  await admin.connect();
  await admin.createAcls({ acl });
  await admin.disconnect();
});
after(async () => {
  await sink?.close();
  await broker.stop();
});

const asUser = { kafkaTlsCa: ca.caCert, kafkaSaslMechanism: 'scram-sha-512', kafkaSaslUsername: 'relay', kafkaSaslPasswordFile: passwordFile } as const;
const flags = ['--topic-prefix', prefix, '--kafka-tls-ca', ca.caCert, '--kafka-sasl-mechanism', 'scram-sha-512', '--kafka-sasl-username', 'relay', '--kafka-sasl-password-file', passwordFile];

test('with exactly the chart\'s ACLs, the relay creates its topics and accepts, the deliverer delivers', async () => {
  const key = newApiKey();
  const account = accountFolder(key);
  let relay: RelayProcess | undefined;
  let deliverer: DelivererProcess | undefined;
  try {
    relay = await RelayProcess.start({ resources: account.dir, kafka: broker.secureBootstrap.sasl, args: ['--allow-auth-without-tls', ...flags] });
    deliverer = await DelivererProcess.start({ resources: account.dir, kafka: broker.secureBootstrap.sasl, args: [...flags, '--route', `*=127.0.0.1:${sink.port}`] });
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } });
    const info = await transport.sendMail({ from: 'sender@example.com', to: 'acl@recipient.test', subject: 'ACLs', text: 'through a principal with only the chart\'s ACLs' });
    assert.match(info.response, /^250 2\.0\.0 OK \d+$/);
    await sink.waitFor('acl@recipient.test');
    await deliverer.waitUntilReady();
  } finally {
    await Promise.all([relay?.stop(), deliverer?.stop()]);
  }
});

test('what the ACLs do not grant is refused: the ACLs are enforced', async () => {
  const admin = createKafka({ logger: pino({ level: 'silent' }), clientId: 'test', connection: kafkaConnection({ kafka: broker.secureBootstrap.sasl, ...asUser }) }).admin();
  await admin.connect();
  try {
    await assert.rejects(admin.deleteTopics({ topics: [`${prefix}.events`], timeout: 5000 }), /authoriz/i);
  } finally {
    await admin.disconnect();
  }
});
