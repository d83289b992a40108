// Standalone keeps its usage counts in its state folder: a key's sending limit and the
// failed AUTHs of an address survive a restart (SIGTERM, and kill -9 after the counts were
// written), so restarting the process is no way around them.
// @needs processes
// @limit 90s
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, apiKeyYaml, newApiKey, tempDir } from '../helpers/resources.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';
import { freePort } from '../kafka/broker.ts';

const key = newApiKey();
const account = accountFolder(newApiKey());
account.write('limited.yaml', apiKeyYaml('acme', 'limited', key, { limits: { messagesPerHour: 2 } }));
const state = tempDir('limits-state');
let sink: SmtpSink | undefined;
let standalone: MtrelayProcess | undefined;

after(async () => {
  await standalone?.stop();
  await sink?.close();
});

async function start(): Promise<number> {
  if (!sink) {
    sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
    await sink.listen();
  }
  standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', account.dir, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
    '--route', `*=127.0.0.1:${sink.port}`, '--tls-policy', '*=opportunistic', '--auth-slow-after', '100', '--auth-block-after', '2']);
  return ((await standalone.started('standalone listening')).ports as { submission: number }).submission;
}

async function mailFrom(port: number, apiKey: string): Promise<string> {
  const client = await RawSmtp.connect(port);
  try {
    await client.reply();
    assert.match((await client.login(apiKey)) ?? '', /^235 /);
    const reply = (await client.command('MAIL FROM:<sender@example.com>')) ?? '';
    if (!reply.startsWith('250')) return reply;
    await client.command('RCPT TO:<someone@recipient.test>');
    await client.command('DATA');
    return (await client.command('From: sender@example.com\r\nSubject: limited\r\n\r\nbody\r\n.')) ?? '(closed)';
  } finally {
    client.close();
  }
}

test('a key at its hourly limit, and an address blocked for failed AUTHs, stay so across a restart and a kill -9', async () => {
  let port = await start();
  assert.match(await mailFrom(port, key), /^250 /);
  assert.match(await mailFrom(port, key), /^250 /);
  assert.match(await mailFrom(port, key), /^451 4\.7\.1 Sending limit of API key acme\/limited reached: 2 messages per hour; /);
  await standalone!.stop();
  port = await start();
  assert.match(await mailFrom(port, key), /^451 4\.7\.1 /, 'after SIGTERM');
  await standalone!.stop('SIGKILL');
  port = await start();
  assert.match(await mailFrom(port, key), /^451 4\.7\.1 /, 'after kill -9');

  // Failed AUTHs, then kill -9 once they have been written (every second).
  for (let i = 0; i < 2; i++) {
    const client = await RawSmtp.connect(port);
    await client.reply();
    assert.equal(await client.login(newApiKey()), '535 5.7.8 Sorry.');
    client.close();
  }
  await new Promise((r) => setTimeout(r, 1500));
  await standalone!.stop('SIGKILL');
  port = await start();
  const refused = await RawSmtp.connect(port);
  assert.match((await refused.reply()) ?? '', /^421 4\.7\.0 Too many failed authentications from 127\.0\.0\.1; try again in \d+ seconds$/);
  refused.close();
});
