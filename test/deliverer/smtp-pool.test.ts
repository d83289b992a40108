// The outbound pool's limits, against a real SMTP server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SmtpPool, type PoolLimits, type PoolOptions } from '../../deliverer/smtp-pool.ts';
import type { Hop } from '../../deliverer/routes.ts';
import type { TlsRequirement } from '../../deliverer/transport-security/transport-security.ts';
import { freePort } from '../kafka/broker.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';

const opportunistic: TlsRequirement = { level: 'opportunistic', source: '--tls-policy', report: { type: 'no-policy-found', domain: 'pool.test', text: [] } };
let sink: SmtpSink;
let hop: Hop;

before(async () => {
  const port = await freePort();
  sink = new SmtpSink({ host: '127.0.0.1', port });
  await sink.listen();
  hop = { name: 'localhost', addresses: ['127.0.0.1'], port };
});
after(() => sink.close());

function pool(limits: PoolLimits & Pick<PoolOptions, 'onOpenChange'>): SmtpPool {
  return new SmtpPool({ ...limits, heloName: 'out.test', ca: [], connectTimeoutMs: 2000, socketTimeoutMs: 5000 });
}

const message = (i: number) => Buffer.from(`From: a@example.com\r\nTo: b@pool.test\r\nSubject: ${i}\r\n\r\nbody\r\n`);

test('connections per destination and messages per connection are bounded; connections are reused', async () => {
  sink.maxOpen = 0;
  sink.perConnection.clear();
  let poolMax = 0;
  const p = pool({ connectionsPerDestination: 2, messagesPerConnection: 3, messagesPerSecond: 0, onOpenChange: (_d, open) => { poolMax = Math.max(poolMax, open); } });
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    p.send(hop, '127.0.0.1', opportunistic, { from: 'a@example.com', to: [`r${i}@pool.test`], message: message(i) })));
  p.close();
  assert.ok(results.every((r) => r.accepted.length === 1));
  // A connection counts until its socket has closed, after QUIT and the server's 221 …
  assert.equal(poolMax, 2, 'the pool kept at most 2 connections open at once');
  // … though the server may see the next one arrive before it has processed the old one's close.
  assert.ok(sink.maxOpen <= 3, `at most 2 connections at once, and one closing, saw ${sink.maxOpen}`);
  const perConnection = [...sink.perConnection.values()];
  assert.equal(perConnection.reduce((a, b) => a + b, 0), 12);
  assert.ok(Math.max(...perConnection) <= 3, `at most 3 messages per connection: ${perConnection}`);
  assert.ok(perConnection.filter((n) => n > 1).length >= 2, `connections are reused: ${perConnection}`);
});

test('messages per second are spaced out', async () => {
  const p = pool({ connectionsPerDestination: 5, messagesPerConnection: 100, messagesPerSecond: 10 });
  const started = Date.now();
  await Promise.all(Array.from({ length: 11 }, (_, i) =>
    p.send(hop, '127.0.0.1', opportunistic, { from: 'a@example.com', to: [`s${i}@pool.test`], message: message(i) })));
  p.close();
  assert.ok(Date.now() - started >= 950, `11 messages at 10/s took ${Date.now() - started} ms`);
});

test('each recipient of a transaction gets its own answer', async () => {
  sink.script.set('no@pool.test', '550 5.1.1 No such user');
  sink.script.set('later@pool.test', '451 4.3.0 Later');
  const p = pool({ connectionsPerDestination: 1, messagesPerConnection: 10, messagesPerSecond: 0 });
  const result = await p.send(hop, '127.0.0.1', opportunistic, { from: 'a@example.com', to: ['yes@pool.test', 'no@pool.test', 'later@pool.test'], message: message(0) });
  const again = await p.send(hop, '127.0.0.1', opportunistic, { from: 'a@example.com', to: ['no@pool.test'], message: message(1) });
  p.close();
  assert.deepEqual(result.accepted, ['yes@pool.test']);
  assert.equal(result.rejected.get('no@pool.test'), '550 5.1.1 No such user');
  assert.equal(result.rejected.get('later@pool.test'), '451 4.3.0 Later');
  assert.equal(again.rejected.get('no@pool.test'), '550 5.1.1 No such user', 'a transaction with no accepted recipient does not spoil the next one');
});
