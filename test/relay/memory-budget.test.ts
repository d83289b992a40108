// The relay's memory under abuse stays within its documented bound (160 MiB, plus 4.5 ×
// --max-in-flight-bytes, plus 13 KiB per open connection): thousands of slowloris
// connections that trickle a byte now and then, and many large DATA streams at once that
// together pass the in-flight budget (the ones past it get 452 4.3.1). An ordinary client is
// served all along, and every 250 is in Kafka.
// @needs kafka processes
// @limit 150s
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, afterEach, beforeEach, test } from 'node:test';
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { replyLine } from '../../shared/smtp-replies.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';

const key = newApiKey();
const prefix = `budget${Date.now()}`;
const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const BUDGET = 48 * MiB;
let relay: RelayProcess;
let kafka: KafkaReader;

const account = accountFolder(key);

/** A fresh relay for each test: memory a process once held is not given back, and would blur the next test's peak. */
beforeEach(async () => {
  relay = await RelayProcess.start({ resources: account.dir, kafka: testKafka(),
    args: ['--allow-auth-without-tls', '--topic-prefix', prefix, '--max-size', String(SIZE), '--max-in-flight-bytes', String(BUDGET),
      '--command-timeout', '300', '--kafka-timeout', '30000'] });
  kafka ??= await KafkaReader.start(testKafka(), `${prefix}.submissions`, false);
});
afterEach(async () => {
  await relay?.stop();
});
after(async () => {
  await kafka?.stop();
});

const status = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${relay.child.pid}/status`, 'utf8'))![1]) / 1024;
/** The documented bound (docs/operations.md), in MiB. */
const bound = (connections: number) => 160 + 4.5 * (BUDGET / MiB) + (13 * connections) / 1024;

/** One ordinary transaction; its reply to the final dot. */
async function ordinary(subject: string): Promise<string> {
  const client = await RawSmtp.connect(relay.ports.submission);
  try {
    await client.reply();
    assert.match((await client.login(key)) ?? '', /^235 /);
    await client.command('MAIL FROM:<sender@example.com>');
    await client.command('RCPT TO:<someone@recipient.test>');
    await client.command('DATA');
    return (await client.command(`From: sender@example.com\r\nSubject: ${subject}\r\n\r\nhello\r\n.`)) ?? '(closed)';
  } finally {
    client.close();
  }
}

test('3000 slowloris connections from 30 addresses: all held, an ordinary client still served, RSS within the bound', async (t) => {
  const sockets: net.Socket[] = [];
  const COUNT = 3000;
  for (let i = 0; i < COUNT; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => new Promise<void>((resolve, reject) => {
      // 30 source addresses, 100 connections each: under the default per-address limit of 500.
      const socket = net.connect({ port: relay.ports.submission, host: '127.0.0.1', localAddress: `127.0.1.${((i + j) % 30) + 1}` }, () => {
        socket.write('EHLO slow.test\r\nNO'); // a command never finished
        resolve();
      });
      socket.on('error', reject);
      sockets.push(socket);
    })));
  }
  try {
    // Trickle one more byte on each, a few times, as slowloris does.
    for (let round = 0; round < 3; round++) {
      for (const socket of sockets) socket.write('O');
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(await relay.metric('mtrelay_relay_open_connections', { listener: 'submission' }), COUNT);
    const started = Date.now();
    const reply = await ordinary('while slowloris');
    assert.match(reply, /^250 2\.0\.0 OK \d+$/);
    assert.ok(Date.now() - started < 5000, `an ordinary transaction took ${Date.now() - started} ms`);
    await kafka.waitFor(reply.split(' ').at(-1)!);
    t.diagnostic(`RSS ${status('VmRSS').toFixed(0)} MiB, peak ${status('VmHWM').toFixed(0)} MiB with ${COUNT} connections; bound ${bound(COUNT).toFixed(0)} MiB`);
    assert.ok(status('VmHWM') < bound(COUNT), `peak RSS ${status('VmHWM').toFixed(0)} MiB is over the bound of ${bound(COUNT).toFixed(0)} MiB`);
  } finally {
    for (const socket of sockets) socket.destroy();
  }
});

test('20 large DATA streams at once (160 MiB against a 48 MiB budget): the ones past it get 452 4.3.1, the rest 250 and in Kafka, RSS within the bound', async (t) => {
  const line = `${'L'.repeat(998)}\r\n`;
  const body = Buffer.from(line.repeat(Math.floor((SIZE - 4096) / line.length)));
  const stream = async (i: number): Promise<string> => {
    const client = await RawSmtp.connect(relay.ports.submission);
    try {
      await client.reply();
      assert.match((await client.login(key)) ?? '', /^235 /);
      await client.command('MAIL FROM:<sender@example.com>');
      await client.command(`RCPT TO:<large${i}@recipient.test>`);
      await client.command('DATA');
      await client.write(`From: sender@example.com\r\nSubject: large ${i}\r\n\r\n`);
      await client.write(body);
      return (await client.command('.')) ?? '(closed)';
    } finally {
      client.close();
    }
  };
  const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => stream(i)));
  const accepted = replies.filter((r) => /^250 2\.0\.0 OK \d+$/.test(r));
  const busy = replies.filter((r) => r === replyLine('RELAY_BUSY'));
  t.diagnostic(`${accepted.length} accepted, ${busy.length} refused with 452; peak RSS ${status('VmHWM').toFixed(0)} MiB, bound ${bound(25).toFixed(0)} MiB`);
  assert.equal(accepted.length + busy.length, 20, replies.filter((r) => !accepted.includes(r) && !busy.includes(r)).join(' | '));
  assert.ok(busy.length > 0, 'the budget was never reached');
  assert.ok(accepted.length >= BUDGET / SIZE - 1, `only ${accepted.length} accepted`);
  for (const reply of accepted) assert.ok((await kafka.waitFor(reply.split(' ').at(-1)!, 30_000)).value.length > SIZE - 8192);
  assert.ok(status('VmHWM') < bound(25), `peak RSS ${status('VmHWM').toFixed(0)} MiB is over the bound of ${bound(25).toFixed(0)} MiB`);
  assert.equal(await relay.metric('mtrelay_relay_in_flight_bytes'), 0, 'every reserved byte came back');
  assert.match(await ordinary('after the streams'), /^250 /);
});
