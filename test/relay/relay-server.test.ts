// The relay's SMTP server in this process, on loopback, with the queue as a seam: what the
// SMTP library writes on its own (the pinned version must keep doing so), two patches of its
// internals (enhanced codes, the greeting), and how a failure behind DATA is answered and logged.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { generate } from 'selfsigned';
import { parseAllDocuments } from 'yaml';
import { AuthThrottle } from '../../relay/auth-throttle.ts';
import { UsageCounters } from '../../shared/usage/usage-counters.ts';
import { DEFAULT_AUTH_USERS, addSmtpOptions, type SmtpFlags } from '../../relay/command.ts';
import { createRelayMetrics } from '../../relay/metrics.ts';
import { RelayServer, type RelaySettings } from '../../relay/relay-server.ts';
import { newTicketKey } from '../../shared/config/compiled-config.ts';
import type { TlsMaterial } from '../../relay/tls-files.ts';
import { compileConfig } from '../../shared/config/compiler.ts';
import { ConfigStore } from '../../shared/config/store.ts';
import { QueueUnavailableError, type QueueRecord, type SubmissionQueue } from '../../shared/queue.ts';
import { replyLine } from '../../shared/smtp-replies.ts';
import { repoRoot } from '../kafka/broker.ts';
import { apiKeyYaml, newApiKey, signedDomainYaml } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';

const key = newApiKey();
const store = new ConfigStore();
store.apply(compileConfig([signedDomainYaml('acme', 'example-com', 'example.com'), apiKeyYaml('acme', 'app', key)]
  .flatMap((yaml) => parseAllDocuments(yaml).map((d) => ({ source: 'test.yaml', document: d.toJS() })))));

/** The queue behind DATA: what `send` does is up to each test. */
const queue: SubmissionQueue & { next: (record: QueueRecord) => Promise<void> } = {
  connected: true,
  next: async () => undefined,
  send(record) { return this.next(record); },
  close: async () => undefined,
};

const logLines: Record<string, unknown>[] = [];
const logger = pino({ level: 'info' }, new Writable({
  write(chunk: Buffer, _encoding, done) {
    logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
    done();
  },
}));

const settings: RelaySettings = {
  host: '127.0.0.1', hostname: 'relay.test', listeners: [{ name: 'submission', port: 0, implicitTls: false }],
  authUsers: DEFAULT_AUTH_USERS, allowAuthWithoutTls: true, maxMessageBytes: 4096, maxHeaderBytes: 2048, maxRecipients: 2,
  maxAttrAddresses: 10, maxClients: 100, maxConnectionsPerAddress: 0, maxInFlightBytes: 1024 * 1024, commandTimeoutMs: 60_000, drainTimeoutMs: 1000, sandboxDomain: 'sandbox.test', sandboxQuota: 5, proxyProtocol: false,
  earlyTalkerDelayMs: 0,
};

function server(overrides: Partial<RelaySettings> = {}, tls?: TlsMaterial, ticketKey = newTicketKey()) {
  const registry = new Registry();
  const metrics = createRelayMetrics(registry);
  const counters = new UsageCounters();
  return { metrics, registry, relay: new RelayServer({ settings: { ...settings, ...overrides }, store, queue, throttle: new AuthThrottle({}, counters), counters, metrics, logger, tls, ticketKey }) };
}

/** A metric's value summed over its labels. */
async function metricValue(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `no metric ${name}`);
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

const plain = server();
let tlsRelay: ReturnType<typeof server>;
let certificate: TlsMaterial;

before(async () => {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
  certificate = { cert: [Buffer.from(pems.cert)], key: [Buffer.from(pems.private)] };
  tlsRelay = server({ allowAuthWithoutTls: false }, certificate);
  await Promise.all([plain.relay.listen(), tlsRelay.relay.listen()]);
});
after(async () => {
  await Promise.all([plain.relay.drain(), tlsRelay.relay.drain()]);
});

async function session(relay = plain.relay): Promise<RawSmtp> {
  const smtp = await RawSmtp.connect(relay.port('submission'));
  assert.match((await smtp.reply()) ?? '', /^220 /);
  return smtp;
}

async function transaction(smtp: RawSmtp, from = 'a@example.com'): Promise<string | undefined> {
  assert.match((await smtp.login(key)) ?? '', /^235 /);
  await smtp.command(`MAIL FROM:<${from}>`);
  await smtp.command('RCPT TO:<b@recipient.test>');
  await smtp.command('DATA');
  return smtp.command(`From: ${from}\r\nTo: b@recipient.test\r\nSubject: x\r\n\r\nbody\r\n.`);
}

describe('replies the SMTP library writes on its own, exactly as the catalogue has them', () => {
  test('AUTH_REQUIRED, TOO_MANY_RECIPIENTS, DECLARED_SIZE_TOO_BIG, COMMAND_TOO_LONG', async () => {
    const smtp = await session();
    await smtp.command('EHLO client.test');
    assert.equal(await smtp.command('MAIL FROM:<a@example.com>'), replyLine('AUTH_REQUIRED'));
    await smtp.login(key);
    assert.equal(await smtp.command('MAIL FROM:<a@example.com> SIZE=999999'), replyLine('DECLARED_SIZE_TOO_BIG', { limit: 4096 }));
    assert.equal(await smtp.command('MAIL FROM:<a@example.com>'), '250 2.1.0 Accepted');
    for (const n of [1, 2]) assert.match((await smtp.command(`RCPT TO:<r${n}@recipient.test>`)) ?? '', /^250 /);
    assert.equal(await smtp.command('RCPT TO:<r3@recipient.test>'), replyLine('TOO_MANY_RECIPIENTS'));
    assert.equal(await smtp.command(`NOOP ${'x'.repeat(17 * 1024)}`), replyLine('COMMAND_TOO_LONG'));
    smtp.close();
  });

  test('AUTH user names: the seed\'s and the one its error table names, in any case; --auth-user replaces them', async () => {
    for (const user of ['smtp_mt_injection', 'SMTP_Injection', 'SMTP_MT_INJECTION', 'smtp_injection']) {
      const smtp = await session();
      assert.match((await smtp.login(key, user)) ?? '', /^235 /, user);
      smtp.close();
    }
    const custom = server({ authUsers: addSmtpOptions(new Command()).parse(['--auth-user', 'relay-user', '--auth-user', 'other'], { from: 'user' }).opts<SmtpFlags>().authUser });
    await custom.relay.listen();
    try {
      for (const [user, reply] of [['RELAY-user', /^235 /], ['other', /^235 /], ['smtp_mt_injection', /^535 5\.7\.8 /]] as const) {
        const smtp = await session(custom.relay);
        assert.match((await smtp.login(key, user)) ?? '', reply, user);
        smtp.close();
      }
    } finally {
      await custom.relay.drain();
    }
  });

  test('STARTTLS_REQUIRED: AUTH before STARTTLS when that is not allowed', async () => {
    const smtp = await session(tlsRelay.relay);
    await smtp.command('EHLO client.test');
    assert.equal(await smtp.command(`AUTH PLAIN ${Buffer.from(`\0smtp_mt_injection\0${key}`).toString('base64')}`), replyLine('STARTTLS_REQUIRED'));
    smtp.close();
  });

  test('DRAINING: a command on an open session once the relay drains', async () => {
    const draining = server();
    await draining.relay.listen();
    const smtp = await session(draining.relay);
    await smtp.command('EHLO client.test');
    const drained = draining.relay.drain();
    assert.equal(await smtp.command('NOOP'), replyLine('DRAINING'));
    smtp.close();
    await drained;
  });
});

describe('limits across sessions', () => {
  test('TOO_MANY_CONNECTIONS: one address gets --max-connections-per-address at once; a closed one frees its place', async () => {
    const limited = server({ maxConnectionsPerAddress: 3 });
    await limited.relay.listen();
    try {
      const open = await Promise.all([1, 2, 3].map(() => session(limited.relay)));
      const fourth = await RawSmtp.connect(limited.relay.port('submission'));
      assert.equal(await fourth.reply(), replyLine('TOO_MANY_CONNECTIONS', { address: '127.0.0.1', limit: 3 }));
      fourth.close();
      open.pop()!.close();
      await new Promise((r) => setTimeout(r, 100));
      const again = await session(limited.relay);
      assert.equal(await again.command('NOOP'), '250 2.0.0 OK');
      for (const smtp of [...open, again]) smtp.close();
      assert.equal(await metricValue(limited.registry, 'mtrelay_relay_refused_connections_total'), 1);
    } finally {
      await limited.relay.drain();
    }
  });

  test('RELAY_BUSY: message data past --max-in-flight-bytes across sessions gets 452 4.3.1; the bytes come back after each reply and after a dropped session', async () => {
    const busy = server({ maxInFlightBytes: 5000 });
    await busy.relay.listen();
    const stored: string[] = [];
    queue.next = async (record) => { stored.push(record.key); };
    try {
      const inData = async () => {
        const smtp = await session(busy.relay);
        assert.match((await smtp.login(key)) ?? '', /^235 /);
        await smtp.command('MAIL FROM:<a@example.com>');
        await smtp.command('RCPT TO:<b@recipient.test>');
        assert.match((await smtp.command('DATA')) ?? '', /^354 /);
        return smtp;
      };
      const head = 'From: a@example.com\r\nSubject: x\r\n\r\n';
      const [first, second] = await Promise.all([inData(), inData()]);
      await first.write(`${head}${'a'.repeat(3000)}\r\n`);
      await new Promise((r) => setTimeout(r, 100)); // the first holds its 3000 bytes, still in DATA
      await second.write(`${head}${'b'.repeat(3000)}\r\n`);
      assert.equal(await second.command('.'), replyLine('RELAY_BUSY'));
      assert.match((await first.command('.')) ?? '', /^250 2\.0\.0 OK \d+$/);
      assert.equal(await metricValue(busy.registry, 'mtrelay_relay_in_flight_bytes'), 0);
      // A session dropped in the middle of DATA gives its bytes back too.
      const dropped = await inData();
      await dropped.write(`${head}${'c'.repeat(3000)}\r\n`);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(await metricValue(busy.registry, 'mtrelay_relay_in_flight_bytes') > 0);
      dropped.close();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await metricValue(busy.registry, 'mtrelay_relay_in_flight_bytes'), 0);
      assert.match((await second.command('MAIL FROM:<a@example.com>')) ?? '', /^250 /, 'the refused session goes on');
      for (const smtp of [first, second]) smtp.close();
      assert.equal(stored.length, 1);
    } finally {
      queue.next = async () => undefined;
      await busy.relay.drain();
    }
  });
});

test('the enhanced-code patch: the relay\'s replies keep their own codes, the library\'s keep the library\'s', async () => {
  const smtp = await session();
  assert.equal(await transaction(smtp, 'a@elsewhere.test'), replyLine('UNCONFIGURED_SENDING_DOMAIN', { domain: 'elsewhere.test' }));
  // Without the patch smtp-server would write "550 5.1.1 5.7.1 Unconfigured …".
  assert.equal(await smtp.command('MAIL FROM:<a@example.com>'), '250 2.1.0 Accepted');
  smtp.close();
});

describe('the greeting', () => {
  /** Milliseconds from connecting to the greeting. */
  async function greetingDelay(relay: RelayServer): Promise<{ ms: number; greeting: string }> {
    const started = performance.now();
    const smtp = await RawSmtp.connect(relay.port('submission'));
    const greeting = (await smtp.reply()) ?? '';
    const ms = performance.now() - started;
    smtp.close();
    return { ms, greeting };
  }

  test('comes at once on the submission ports: no fixed wait before it', async () => {
    const delays: number[] = [];
    for (let i = 0; i < 15; i++) {
      const { ms, greeting } = await greetingDelay(plain.relay);
      assert.match(greeting, /^220 relay\.test /);
      delays.push(ms);
    }
    delays.sort((a, b) => a - b);
    // smtp-server's own fixed wait was 100 ms on every connection; the median is now far below it.
    assert.ok(delays[7]! < 50, `median connect → greeting ${delays[7]!.toFixed(1)} ms (all: ${delays.map((d) => d.toFixed(1)).join(', ')})`);
  });

  test('nor anywhere on the way: connect to QUIT of a whole transaction takes a few milliseconds', async () => {
    // Catches any fixed wait on the path (a greeting delay, Nagle against delayed ACKs on the
    // small replies, a timer): each would add tens of milliseconds to every message.
    queue.next = async () => undefined;
    const own = server();
    await own.relay.listen();
    const took: number[] = [];
    try {
      for (let i = 0; i < 15; i++) {
        const started = performance.now();
        const smtp = await session(own.relay);
        await smtp.command('EHLO client.test');
        assert.match((await transaction(smtp)) ?? '', /^250 /);
        await smtp.command('QUIT');
        took.push(performance.now() - started);
        smtp.close();
      }
    } finally {
      await own.relay.drain();
    }
    took.sort((a, b) => a - b);
    assert.ok(took[7]! < 25, `median connect → QUIT ${took[7]!.toFixed(1)} ms (all: ${took.map((d) => d.toFixed(1)).join(', ')})`);
  });

  test('--early-talker-delay waits as asked, and refuses a client that talks first', async () => {
    const mx = server({ earlyTalkerDelayMs: 300 });
    await mx.relay.listen();
    try {
      const { ms, greeting } = await greetingDelay(mx.relay);
      assert.match(greeting, /^220 /);
      assert.ok(ms >= 290, `greeting after ${ms.toFixed(0)} ms`);
      const early = await RawSmtp.connect(mx.relay.port('submission'));
      await early.write('EHLO early.test\r\n');
      // Before the greeting there is no EHLO yet, so the library answers without an enhanced code.
      assert.equal(await early.reply(), '421 relay.test You talk too soon');
      early.close();
    } finally {
      await mx.relay.drain();
    }
  });
});

describe('TLS session resumption', () => {
  /** A STARTTLS session on `relay` offering `session`; returns whether it was resumed, and the session to offer next. */
  async function startTls(relay: RelayServer, maxVersion: 'TLSv1.2' | 'TLSv1.3', session?: Buffer) {
    const smtp = await RawSmtp.connect(relay.port('submission'));
    await smtp.reply();
    await smtp.command('EHLO client.test');
    const socket = await smtp.startTls(certificate.cert[0]!, { maxVersion, ...(session ? { session } : {}) });
    await smtp.command('EHLO client.test'); // by now a TLS 1.3 server has sent its ticket
    const resumed = socket.isSessionReused();
    const next = smtp.tlsSession;
    await smtp.command('QUIT');
    smtp.close();
    return { resumed, next };
  }

  test('a session from one relay resumes on another holding the same ticket key, TLS 1.3 and 1.2; not on one without it', async () => {
    const key = newTicketKey();
    const first = server({}, certificate, key);
    const sameKey = server({}, certificate, key);
    const otherKey = server({}, certificate);
    await Promise.all([first.relay.listen(), sameKey.relay.listen(), otherKey.relay.listen()]);
    try {
      for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
        const full = await startTls(first.relay, version);
        assert.equal(full.resumed, false, version);
        assert.ok(full.next, `${version}: the relay issued a ticket`);
        assert.equal((await startTls(sameKey.relay, version, full.next)).resumed, true, `${version}: resumed on the other replica`);
        assert.equal((await startTls(otherKey.relay, version, full.next)).resumed, false, `${version}: another key cannot read the ticket`);
      }
      // A new key (rotation): tickets issued before it make a full handshake, later ones resume.
      const before = await startTls(first.relay, 'TLSv1.3');
      const rotated = newTicketKey();
      first.relay.setTicketKey(rotated);
      sameKey.relay.setTicketKey(rotated);
      assert.equal((await startTls(first.relay, 'TLSv1.3', before.next)).resumed, false);
      const after = await startTls(first.relay, 'TLSv1.3');
      assert.equal((await startTls(sameKey.relay, 'TLSv1.3', after.next)).resumed, true);
    } finally {
      await Promise.all([first.relay.drain(), sameKey.relay.drain(), otherKey.relay.drain()]);
    }
  });
});

describe('a failure behind DATA', () => {
  test('a fault of mtrelay is INTERNAL_ERROR with the session id, logged with its stack; never blamed on the queue', async () => {
    queue.next = async () => { throw new TypeError('cannot read properties of undefined'); };
    const smtp = await session();
    const answer = (await transaction(smtp)) ?? '';
    smtp.close();
    const sessionId = /logged with session (\S+);/.exec(answer)?.[1];
    assert.ok(sessionId, answer);
    assert.equal(answer, replyLine('INTERNAL_ERROR', { session: sessionId }));
    const line = logLines.find((l) => l.msg === 'internal error in DATA' && l.session === sessionId);
    assert.ok(line, 'logged with the session id the client was told');
    const err = line.err as { type: string; message: string; stack: string };
    assert.equal(err.type, 'TypeError');
    assert.match(err.stack, /relay-server\.test\.ts/, 'pino\'s err serializer keeps the stack');
    assert.equal((await plain.metrics.replies.get()).values.find((v) => v.labels.reply === 'INTERNAL_ERROR')?.value, 1);
  });

  test('the queue refusing to store is QUEUE_UNAVAILABLE, with the cause logged', async () => {
    queue.next = async () => { throw new QueueUnavailableError('no acknowledgement from Kafka within 5000 ms'); };
    const smtp = await session();
    assert.equal(await transaction(smtp), replyLine('QUEUE_UNAVAILABLE'));
    smtp.close();
    const line = logLines.find((l) => l.msg === 'message not queued');
    assert.equal((line?.err as { code?: string } | undefined)?.code, 'MTR_ERR_QUEUE_UNAVAILABLE');
  });

  test('a stored message is ACCEPTED, counted by name', async () => {
    queue.next = async () => undefined;
    const smtp = await session();
    assert.match((await transaction(smtp)) ?? '', /^250 2\.0\.0 OK \d+$/);
    smtp.close();
    assert.equal((await plain.metrics.replies.get()).values.find((v) => v.labels.reply === 'ACCEPTED')?.value, 1);
  });
});

test('the libraries whose internals mtrelay uses are pinned to the exact versions these tests ran against', () => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const name of ['smtp-server', 'nodemailer']) {
    const installed = (JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    assert.match(pkg.dependencies[name]!, /^\d+\.\d+\.\d+$/, `${name} must be pinned exactly: its internals are used`);
    assert.equal(pkg.dependencies[name], installed);
  }
});
