// The ACLs of the chart's Strimzi KafkaUsers are what the roles need, on a real broker that
// enforces them: the chart's ACLs are granted to a SCRAM user (as Strimzi's User Operator
// would), and a relay and a deliverer connected as that user create their topics, accept a
// message and deliver it; the tracker's own user's ACLs are granted to a client certificate's
// principal, and a tracker connected with it publishes the events of a pixel and a click, with
// the keys file the chart generates. What the ACLs do not grant is refused.
// @needs chart kafka-own processes openssl
// @limit 120s
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { createKafka, kafkaConnection } from '../../shared/kafka/client.ts';
import { readTrackingKeys } from '../../shared/tracking/keys-file.ts';
import { signToken, type TrackingClaims } from '../../shared/tracking/tokens.ts';
import { KafkaBroker, freePort } from '../kafka/broker.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { DelivererProcess, MtrelayProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { createTestCa } from '../helpers/tls.ts';
import { render } from './chart.ts';

const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, ResourcePatternTypes, logLevel } = kafkajs; // CommonJS
interface StrimziAcl { resource: { type: 'topic' | 'group' | 'cluster'; name?: string; patternType?: 'literal' | 'prefix' }; operations: string[] }

const dir = tempDir('kafka-user-acls');
const ca = createTestCa();
const brokerCert = ca.issue('broker', ['127.0.0.1', 'localhost']);
// The tracker's KafkaUser with authentication tls: Strimzi's principal is then CN=<user>.
const trackerCert = ca.issue('tracker', ['mtrelay-tracker'], { usage: 'clientAuth' });
const trackerPrincipal = 'User:CN=mtrelay-tracker';
const passwordFile = path.join(dir, 'password');
writeFileSync(passwordFile, 'relay-secret\n');
// The broker's SCRAM user stands for the KafkaUser; Strimzi would name it after the release.
const broker = new KafkaBroker({ dir, secure: { caFile: ca.caCert, certFile: brokerCert.cert, keyFile: brokerCert.key, user: { name: 'relay', password: 'relay-secret' } } });
const prefix = `acl${Date.now()}`;
let sink: SmtpSink;

const rendered = render({ set: 'strimzi', values: ['kafka.strimzi.topics.enabled=false', `kafka.topicPrefix=${prefix}`] });

/** A KafkaUser's ACLs, as the chart renders them for a Strimzi install that lets mtrelay create its topics. */
function chartAcls(name: string): StrimziAcl[] {
  const user = rendered.find((o) => o.kind === 'KafkaUser' && o.metadata.name === name);
  assert.ok(user, `the chart renders the KafkaUser ${name}`);
  return (user.spec as { authorization: { acls: StrimziAcl[] } }).authorization.acls;
}

before(async () => {
  await broker.start();
  sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
  await sink.listen();
  // Granted as Strimzi's User Operator grants them: one ALLOW per operation, for the user.
  const types = { topic: AclResourceTypes.TOPIC, group: AclResourceTypes.GROUP, cluster: AclResourceTypes.CLUSTER };
  const grants = (user: string, principal: string) => chartAcls(user).flatMap(({ resource, operations }) => operations.map((operation) => ({
    resourceType: types[resource.type], resourceName: resource.type === 'cluster' ? 'kafka-cluster' : resource.name!,
    resourcePatternType: resource.patternType === 'prefix' ? ResourcePatternTypes.PREFIXED : ResourcePatternTypes.LITERAL,
    principal, host: '*', permissionType: AclPermissionTypes.ALLOW,
    operation: AclOperationTypes[operation.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase() as keyof typeof AclOperationTypes],
  })));
  const acl = [...grants('mtrelay', 'User:relay'), ...grants('mtrelay-tracker', trackerPrincipal)];
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

const asTracker = { kafkaTlsCa: ca.caCert, kafkaTlsCert: trackerCert.cert, kafkaTlsKey: trackerCert.key } as const;

test('with exactly its own user\'s ACLs, the tracker publishes engagement events, and may do nothing else', async () => {
  // The keys file exactly as the chart generates it, shared by tracker and deliverer.
  const secret = rendered.find((o) => o.kind === 'Secret' && o.metadata.name === 'mtrelay-tracking-keys');
  assert.ok(secret, 'the chart generates the tracking keys');
  const keysFile = path.join(dir, 'tracking-keys');
  writeFileSync(keysFile, Buffer.from((secret.data as { keys: string }).keys, 'base64'));
  const ring = readTrackingKeys(keysFile);
  // The topics exist (the relay and deliverer make them); read back by the super user.
  const events = await KafkaReader.start(broker.bootstrap, `${prefix}.events`);
  const tracker = new MtrelayProcess(['tracker', '--kafka', broker.secureBootstrap.ssl, '--kafka-tls-ca', asTracker.kafkaTlsCa,
    '--kafka-tls-cert', asTracker.kafkaTlsCert, '--kafka-tls-key', asTracker.kafkaTlsKey, '--topic-prefix', prefix,
    '--host', '127.0.0.1', '--port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--tracking-keys', keysFile]);
  try {
    const ready = await tracker.started('tracker listening');
    tracker.metricsPort = ready.metricsPort as number;
    await tracker.waitUntilReady();
    const base = `http://127.0.0.1:${ready.port as number}`;
    const transmissionId = `acl-${randomBytes(4).toString('hex')}`;
    const claims = (kind: TrackingClaims['kind']): TrackingClaims => ({
      kind, transmissionId, rcptTo: 'reader@example.com', namespace: 'acme', expiresAt: Math.floor(Date.now() / 1000) + 3600,
      ...(kind === 'click' ? { target: 'https://shop.example.com/' } : {}),
    });
    assert.equal((await fetch(`${base}/o/${signToken(ring, claims('open'))}.gif`)).status, 200);
    assert.equal((await fetch(`${base}/c/${signToken(ring, claims('click'))}`, { redirect: 'manual' })).status, 302);
    const deadline = Date.now() + 15_000;
    const types = () => events.records.map((r) => JSON.parse(r.value.toString()) as { type: string; transmission_id: string })
      .filter((e) => e.transmission_id === transmissionId).map((e) => e.type).sort();
    while (types().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(types(), ['click', 'open']);
    assert.equal(await tracker.metric('mtrelay_tracker_events_lost_total'), 0);
  } finally {
    await tracker.stop();
    await events.stop();
  }

  // The same principal may not write mail, read the events back, or change topics.
  const kafka = createKafka({ logger: pino({ level: 'silent' }), clientId: 'test', connection: kafkaConnection({ kafka: broker.secureBootstrap.ssl, ...asTracker }) });
  const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  const admin = kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
  try {
    await assert.rejects(producer.send({ topic: `${prefix}.submissions`, messages: [{ value: 'mail' }] }), /authoriz/i);
    // Reading the events back: its group has no ACL (so it is allowed here), the topic refuses.
    const consumer = kafka.consumer({ groupId: `acl-other-${prefix}`, retry: { retries: 0 } });
    const crashed = new Promise<Error>((resolve) => consumer.on(consumer.events.CRASH, ({ payload }) => resolve(payload.error)));
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: `${prefix}.events`, fromBeginning: true });
      await consumer.run({ eachMessage: async () => assert.fail('the tracker\'s user read an event') });
      assert.match(String(await crashed), /authoriz/i);
    } finally {
      await consumer.disconnect();
    }
    await assert.rejects(admin.deleteTopics({ topics: [`${prefix}.events`], timeout: 5000 }), /authoriz/i);
  } finally {
    await Promise.all([producer.disconnect(), admin.disconnect()]);
  }
});
