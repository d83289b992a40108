// nodemailer's address parser and SMTP client have no public API; shared/mail/nodemailer-internals.ts
// imports them and package.json pins nodemailer exactly. This is what mtrelay relies on of them,
// so an upgrade that changes any of it fails here, loudly, before it reaches a mailbox.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { TLSSocket } from 'node:tls';
import { SMTPConnection, addressparser, tlsSocketOf } from '../../shared/mail/nodemailer-internals.ts';

test('addressparser: names, quoted commas, groups and bare addresses', () => {
  assert.deepEqual(addressparser('"Shop, Inc." <shop@example.com>, team: a@x.test, b@y.test;, plain@z.test'), [
    { name: 'Shop, Inc.', address: 'shop@example.com' },
    { name: 'team', group: [{ name: '', address: 'a@x.test' }, { name: '', address: 'b@y.test' }] },
    { name: '', address: 'plain@z.test' },
  ]);
  assert.deepEqual(addressparser('no address here'), [{ name: 'no address here', address: '' }]);
});

let server: SMTPServer;
let port = 0;

before(async () => {
  server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
    onRcptTo: (address, _session, callback) => callback(address.address.startsWith('no') ? Object.assign(new Error('No such user'), { responseCode: 550 }) : undefined),
    onData: (stream, _session, callback) => { stream.resume(); stream.on('end', () => callback(null, 'Queued as 7')); },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  port = (server.server.address() as AddressInfo).port;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function connect(options: Record<string, unknown> = {}): Promise<SMTPConnection> {
  const connection = new SMTPConnection({ host: '127.0.0.1', port, name: 'out.test', secure: false, ignoreTLS: true, connectionTimeout: 2000, ...options });
  return new Promise((resolve, reject) => {
    connection.once('error', reject);
    connection.connect((error?: Error | null) => (error ? reject(error) : resolve(connection)));
  });
}

const message = Buffer.from('From: a@example.com\r\nTo: yes@x.test\r\nSubject: t\r\n\r\nbody\r\n');

test('SMTPConnection.send answers per recipient: accepted, rejected with each reply, and the DATA reply', async () => {
  const connection = await connect();
  const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) =>
    connection.send({ from: 'a@example.com', to: ['yes@x.test', 'no@x.test'] }, message, (error, result) => (error ? reject(error) : resolve(result))));
  assert.deepEqual(info.accepted, ['yes@x.test']);
  assert.deepEqual(info.rejected, ['no@x.test']);
  const rejected = info.rejectedErrors?.[0] as (Error & { recipient?: string; response?: string }) | undefined;
  assert.equal(rejected?.recipient, 'no@x.test');
  assert.match(rejected?.response ?? '', /^550 .*No such user$/);
  assert.match(info.response, /^250 .*Queued as 7$/);
  assert.equal(connection.secure, false);
  connection.quit();
});

test('every recipient refused: EENVELOPE with rejectedErrors; required TLS that is not offered: an error event', async () => {
  const connection = await connect();
  const error = await new Promise<Error & { code?: string; rejectedErrors?: { recipient?: string }[] }>((resolve) =>
    connection.send({ from: 'a@example.com', to: ['no@x.test'] }, message, (e) => resolve(e as never)));
  assert.equal(error.code, 'EENVELOPE');
  assert.equal(error.rejectedErrors?.[0]?.recipient, 'no@x.test');
  connection.close();
  await assert.rejects(connect({ ignoreTLS: false, requireTLS: true }), (e: Error & { code?: string }) => e.code === 'ETLS' || /STARTTLS/.test(e.message));
});

test('tlsSocketOf: the TLS socket after STARTTLS, whose certificate chain DANE and MTA-STS check; undefined in plain text', async () => {
  const tlsServer = new SMTPServer({ authOptional: true, logger: false, onData: (stream, _session, callback) => { stream.resume(); stream.on('end', () => callback()); } });
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', () => resolve()));
  try {
    const tlsPort = (tlsServer.server.address() as AddressInfo).port;
    const connection = new SMTPConnection({ host: '127.0.0.1', port: tlsPort, name: 'out.test', requireTLS: true, tls: { rejectUnauthorized: false }, connectionTimeout: 2000 });
    await new Promise<void>((resolve, reject) => {
      connection.once('error', reject);
      connection.connect((error?: Error | null) => (error ? reject(error) : resolve()));
    });
    const socket = tlsSocketOf(connection);
    assert.ok(socket instanceof TLSSocket);
    assert.ok(socket.getPeerCertificate(true).raw.length > 0, 'the peer certificate is readable');
    connection.quit();
    const plain = await connect();
    assert.equal(tlsSocketOf(plain), undefined);
    plain.quit();
  } finally {
    await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
  }
});
