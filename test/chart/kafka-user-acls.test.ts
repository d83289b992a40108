// The ACLs of the chart's Strimzi KafkaUsers are what the roles need, on a real broker that
// enforces them: the chart's ACLs are granted to a SCRAM user (as Strimzi's User Operator
// would), and a relay and a deliverer connected as that user create their topics, accept a
// message and deliver it; the tracker's own user's ACLs are granted to a client certificate's
// principal, and a tracker connected with it publishes the events of a pixel and a click, with
// the keys file the chart generates; the dispatcher's user's ACLs are granted to another
// certificate's principal, and a dispatcher connected with it, in the group the chart gives it,
// posts events to a webhook and commits its offsets; the inbound role's, to a third, and an
// inbound connected with it stores a bounce's event and suppression. What the ACLs do not
// grant is refused.
// @needs chart kafka-own processes openssl swaks
// @limit 120s
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { createKafka, kafkaConnection } from '../../shared/kafka/client.ts';
import { readTrackingKeys } from '../../shared/tracking/keys-file.ts';
import { signToken, type TrackingClaims } from '../../shared/tracking/tokens.ts';
import { KafkaBroker, freePort } from '../kafka/broker.ts';
import { KafkaReader, uncommitted } from '../helpers/kafka-reader.ts';
import { DelivererProcess, MtrelayProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey, tempDir } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { createTestCa } from '../helpers/tls.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { swaks } from '../helpers/swaks.ts';
import { filled } from '../inbound/report-corpus.ts';
import { render } from './chart.ts';

const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, ResourcePatternTypes, logLevel } = kafkajs; // CommonJS
interface StrimziAcl { resource: { type: 'topic' | 'group' | 'cluster'; name?: string; patternType?: 'literal' | 'prefix' }; operations: string[] }

const dir = tempDir('kafka-user-acls');
const ca = createTestCa();
const brokerCert = ca.issue('broker', ['127.0.0.1', 'localhost']);
// The tracker's KafkaUser with authentication tls: Strimzi's principal is then CN=<user>.
const trackerCert = ca.issue('tracker', ['mtrelay-tracker'], { usage: 'clientAuth' });
const trackerPrincipal = 'User:CN=mtrelay-tracker';
const dispatcherCert = ca.issue('dispatcher', ['mtrelay-dispatcher'], { usage: 'clientAuth' });
const dispatcherPrincipal = 'User:CN=mtrelay-dispatcher';
const inboundCert = ca.issue('inbound', ['mtrelay-inbound'], { usage: 'clientAuth' });
const inboundPrincipal = 'User:CN=mtrelay-inbound';
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
  const acl = [...grants('mtrelay', 'User:relay'), ...grants('mtrelay-tracker', trackerPrincipal), ...grants('mtrelay-dispatcher', dispatcherPrincipal),
    ...grants('mtrelay-inbound', inboundPrincipal)];
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

test('with exactly its own user\'s ACLs, the tracker publishes engagement events and one-click unsubscribes, and may do nothing else', async () => {
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
    // An unsubscribe writes the suppressions topic too, before its answer.
    const unsubscribed = await fetch(`${base}/u/${signToken(ring, claims('unsubscribe'))}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    assert.equal(unsubscribed.status, 200);
    const deadline = Date.now() + 15_000;
    const types = () => events.records.map((r) => JSON.parse(r.value.toString()) as { type: string; transmission_id: string })
      .filter((e) => e.transmission_id === transmissionId).map((e) => e.type).sort();
    while (types().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(types(), ['click', 'list_unsubscribe', 'open']);
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

const asDispatcher = { kafkaTlsCa: ca.caCert, kafkaTlsCert: dispatcherCert.cert, kafkaTlsKey: dispatcherCert.key } as const;

test('with exactly its own user\'s ACLs, the dispatcher consumes events in its group and posts them, and may do nothing else', async () => {
  // The group the chart runs the dispatchers in, which its ACLs name.
  const deployment = rendered.find((o) => o.kind === 'Deployment' && o.metadata.name === 'mtrelay-dispatcher');
  assert.ok(deployment, 'the chart renders the dispatcher');
  const args = (deployment.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
  const group = args.find((a) => a.startsWith('--group-id='))!.slice('--group-id='.length);
  const topic = `${prefix}.events`;
  const receiver = new WebhookReceiver();
  await receiver.listen();
  const resources = tempDir('kafka-user-acls-webhooks');
  writeFileSync(path.join(resources, 'webhook.yaml'), [
    'apiVersion: mtrelay.dev/v1alpha1', 'kind: Webhook', 'metadata: {name: events, namespace: acme}',
    `spec: {url: "${receiver.url('/events')}", allowInsecureUrl: true}`, '',
  ].join('\n'));
  // Events written as the relay, deliverer and tracker would, by the super user.
  const producer = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  const produce = async () => {
    const transmissionId = `acl-${randomBytes(4).toString('hex')}`;
    const events = [0, 1, 2].map((i) => ({
      type: 'delivery', event_id: `${transmissionId}-${i}`, timestamp: new Date().toISOString(), namespace: 'acme', transmission_id: transmissionId, rcpt_to: `r${i}@example.com`, tags: [],
    }));
    const [written] = await producer.send({ topic, messages: events.map((e) => ({ key: transmissionId, value: JSON.stringify(e) })) });
    return { ids: events.map((e) => e.event_id), partition: written!.partition };
  };
  const dispatcher = new MtrelayProcess(['dispatcher', '--webhook-allow-private', '--resources', resources, '--kafka', broker.secureBootstrap.ssl, '--kafka-tls-ca', asDispatcher.kafkaTlsCa,
    '--kafka-tls-cert', asDispatcher.kafkaTlsCert, '--kafka-tls-key', asDispatcher.kafkaTlsKey, '--topic-prefix', prefix, '--group-id', group,
    '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--batch-linger', '200ms']);
  try {
    const ready = await dispatcher.started('dispatcher running');
    dispatcher.metricsPort = ready.metricsPort as number;
    await dispatcher.waitUntilReady(); // in the consumer group
    await receiver.waitFor((r) => r.batches.length >= 1); // the test batch of a webhook seen for the first time
    // It starts at the end of the topic: events written before its first fetch settled that
    // position would be skipped, so a batch that does not arrive is written again.
    let sent = await produce();
    for (let attempt = 1; ; attempt++) {
      try {
        await receiver.waitFor((r) => sent.ids.every((id) => r.events().some((e) => e.event_id === id)), 5000);
        break;
      } catch (error) {
        if (attempt === 3) throw error;
        sent = await produce();
      }
    }
    assert.deepEqual(receiver.events().map((e) => e.event_id).filter((id) => sent.ids.includes(id as string)), sent.ids);
    assert.ok(receiver.events().every((e) => e.subaccount === 'acme'));
    // Its position is committed in its group: the next dispatcher does not post them again.
    const deadline = Date.now() + 15_000;
    while ((await uncommitted(broker.bootstrap, group, topic)).some((p) => p.partition === sent.partition)) {
      if (Date.now() > deadline) throw new Error(`offsets not committed: ${JSON.stringify(await uncommitted(broker.bootstrap, group, topic))}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    assert.equal(await dispatcher.stop(), 0);
    await producer.disconnect();
    await receiver.close();
  }

  // The same principal may not write events, nor join another group: the deliverers' (a group
  // with ACLs; the broker lets anyone use one that has none, as with the tracker above).
  const kafka = createKafka({ logger: pino({ level: 'silent' }), clientId: 'test', connection: kafkaConnection({ kafka: broker.secureBootstrap.ssl, ...asDispatcher }) });
  const own = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  await own.connect();
  try {
    await assert.rejects(own.send({ topic, messages: [{ value: '{}' }] }), /authoriz/i);
  } finally {
    await own.disconnect();
  }
  // kafkajs reports a FindCoordinator the broker refused as "Failed to find group coordinator";
  // its debug log has the broker's answer.
  const refusals: string[] = [];
  const watched = new Kafka({
    brokers: [broker.secureBootstrap.ssl], clientId: 'test', logLevel: logLevel.DEBUG,
    ssl: { ca: [readFileSync(asDispatcher.kafkaTlsCa)], cert: readFileSync(asDispatcher.kafkaTlsCert), key: readFileSync(asDispatcher.kafkaTlsKey) },
    logCreator: () => ({ log }) => {
      const type = (log.error as { type?: string } | undefined)?.type;
      if (type) refusals.push(type);
    },
  });
  const consumer = watched.consumer({ groupId: 'mtrelay-deliverer', retry: { retries: 0 } });
  const crashed = new Promise<Error>((resolve) => consumer.on(consumer.events.CRASH, ({ payload }) => resolve(payload.error)));
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const ran = consumer.run({ eachMessage: async () => assert.fail('the dispatcher\'s user read in the deliverers\' group') }).then(() => crashed, (error: Error) => error);
    assert.match(String(await ran), /group coordinator|authoriz/i);
    assert.ok(refusals.includes('GROUP_AUTHORIZATION_FAILED'), `refused for: ${refusals.join(', ')}`);
  } finally {
    await consumer.disconnect();
  }
});

const asInbound = { kafkaTlsCa: ca.caCert, kafkaTlsCert: inboundCert.cert, kafkaTlsKey: inboundCert.key } as const;

test("with exactly its own user's ACLs, the inbound role stores a bounce's event and suppression, and may do nothing else", async () => {
  const deployment = rendered.find((o) => o.kind === 'Deployment' && o.metadata.name === 'mtrelay-inbound');
  assert.ok(deployment, 'the chart renders the inbound role (the strimzi set has a bounce domain)');
  const [events, suppressions] = await Promise.all([KafkaReader.start(broker.bootstrap, `${prefix}.events`, false), KafkaReader.start(broker.bootstrap, `${prefix}.suppressions`, false)]);
  const inbound = new MtrelayProcess(['inbound', '--kafka', broker.secureBootstrap.ssl, '--kafka-tls-ca', asInbound.kafkaTlsCa, '--kafka-tls-cert', asInbound.kafkaTlsCert,
    '--kafka-tls-key', asInbound.kafkaTlsKey, '--topic-prefix', prefix, '--bounce-domain', 'bounces.example.com', '--host', '127.0.0.1', '--port', '0',
    '--metrics-host', '127.0.0.1', '--metrics-port', '0']);
  try {
    const ready = await inbound.started('inbound listening');
    inbound.metricsPort = ready.metricsPort as number;
    await inbound.waitUntilReady();
    const transmissionId = String(Date.now());
    const returnPath = `b+${transmissionId}+gone=recipient.test@bounces.example.com`;
    const report = filled('rfc3464-unknown-user.eml', { bounceAddress: returnPath, fblAddress: 'fbl@bounces.example.com', transmissionId, namespace: 'acme', rcpt: 'gone@recipient.test' });
    const sent = await swaks(['--server', `127.0.0.1:${ready.port as number}`, '--from', '<>', '--to', returnPath, '--data', '-'], report.toString('latin1'));
    assert.equal(sent.dataReply, '250 2.0.0 Report accepted (bounce)', sent.output.slice(-300));
    const deadline = Date.now() + 15_000;
    const stored = () => events.records.some((r) => r.value.toString().includes(transmissionId)) && suppressions.records.some((r) => r.key === 'acme/gone@recipient.test');
    while (!stored() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(stored(), 'the out_of_band event and the suppression are in their topics');
  } finally {
    await inbound.stop();
    await Promise.all([events.stop(), suppressions.stop()]);
  }
  // The same principal may not write mail or read the events back.
  const kafka = createKafka({ logger: pino({ level: 'silent' }), clientId: 'test', connection: kafkaConnection({ kafka: broker.secureBootstrap.ssl, ...asInbound }) });
  const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  await producer.connect();
  try {
    await assert.rejects(producer.send({ topic: `${prefix}.submissions`, messages: [{ value: 'mail' }] }), /authoriz/i);
  } finally {
    await producer.disconnect();
  }
});
