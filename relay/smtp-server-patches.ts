// The four patches of smtp-server's internals, for what it has no public option for. package.json
// pins smtp-server's exact version, and test/relay/relay-server.test.ts (1, 2),
// test/relay/tls-certificates.test.ts (3) and test/relay/data-stream.test.ts (4) fail when an
// upgrade changes the behaviour patched here or the library's own replies. Imported once, for effect.
//
// 1. Enhanced status codes: smtp-server derives the enhanced code from the reply code alone
//    (550 → 5.1.1), but the reply catalogue gives each reply its own (550 5.7.1, 550 5.6.0). A
//    reply text that already starts with an enhanced status code goes out as it is.
// 2. The greeting: smtp-server waits 100 ms before every greeting to catch clients that talk
//    first, a defence for port 25 MX hosts that costs an authenticated submission port 100 ms
//    per connection. The wait is the server option `earlyTalkerDelayMs`, 0 unless set.
// 3. SNI: smtp-server answers every client's server name with its default context, and Node.js,
//    switching a socket to a context by SNI, keeps only that context's last certificate. With an
//    RSA and an ECDSA certificate, a TLS 1.3 client that cannot verify ECDSA then failed the
//    handshake. Without per-name certificates (sniOptions) the socket keeps the context it has.
// 4. DATA: smtp-server looks at every byte of a message in JavaScript for a dot at the start of a
//    line (the end of data, or an escaped dot); at 100 KB that was a tenth of the relay's CPU.
//    The same function, with the byte loop replaced by Buffer.indexOf of "\n.": same chunks
//    out, same state kept between chunks.
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

type Send = (code: number, data?: string | string[], context?: string | false) => void;
interface Connection {
  name: string;
  send: Send;
  connectionReady(): void;
  _setListeners(ready: () => void): void;
  _server: { options: { maxClients?: number; earlyTalkerDelayMs?: number }; connections: Set<unknown> };
}
const prototype = SMTPConnection.prototype as unknown as Connection & { init(): void };

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
const originalSend = prototype.send;
prototype.send = function send(this: Connection, code, data, context) {
  const own = typeof data === 'string' && ENHANCED.test(data);
  return originalSend.call(this, code, data, own ? false : context);
};

/** Extra options of SMTPServer these patches read. */
export interface PatchedServerOptions {
  /** Wait this long before the greeting; a client that talks first gets 421 "You talk too soon". */
  earlyTalkerDelayMs?: number;
}

// As the library's init(), with the delay taken from the option.
prototype.init = function init(this: Connection) {
  this._setListeners(() => {
    const { maxClients, earlyTalkerDelayMs = 0 } = this._server.options;
    if (maxClients && this._server.connections.size > maxClients) {
      this.send(421, `${this.name} Too many connected clients, try again in a moment`, false);
      return;
    }
    if (earlyTalkerDelayMs > 0) setTimeout(() => this.connectionReady(), earlyTalkerDelayMs).unref();
    else this.connectionReady();
  });
};

type ResolveSni = (servername: string, callback: (error: Error | null, context?: unknown) => void) => void;
const serverPrototype = SMTPServer.prototype as unknown as { _resolveSNI: ResolveSni; options: { sniOptions?: unknown; SNICallback?: unknown } };
const originalResolveSni = serverPrototype._resolveSNI;
serverPrototype._resolveSNI = function resolveSni(this: typeof serverPrototype, servername, callback) {
  if (this.options.sniOptions || this.options.SNICallback) return originalResolveSni.call(this, servername, callback);
  callback(null, undefined);
};

type Done = (error?: Error | null) => void;
interface DataStreamState {
  _dataStream: NodeJS.WritableStream & { writable: boolean; destroyed: boolean; write(chunk: Buffer): boolean };
  _lastBytes: Buffer | false;
  _atDataStart: boolean;
  _countDataBytes(length: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: Done): void;
  _feedDataStream(chunk: Buffer, done: Done): void;
}
const END_SEQUENCE = Buffer.from('\r\n.\r\n');
const END_AT_START = Buffer.from('.\r\n');
const LINE_STARTING_WITH_DOT = Buffer.from('\n.');

// smtp-server 3.21.6's _feedDataStream, with `for (i = 2; i < len - 2; i++) if (chunk[i] === 0x2e
// && chunk[i - 1] === 0x0a)` as a search for "\n." (the dot at i, so i - 1 from 1 to len - 4).
(SMTPStream.prototype as unknown as DataStreamState)._feedDataStream = function feedDataStream(this: DataStreamState, input: Buffer, done: Done) {
  const dataStream = this._dataStream;
  let chunk = input;
  if (this._lastBytes && this._lastBytes.length) {
    chunk = Buffer.concat([this._lastBytes, chunk], this._lastBytes.length + chunk.length);
    this._lastBytes = false;
  }
  let len = chunk.length;
  if (this._atDataStart && len >= 3 && Buffer.compare(chunk.subarray(0, 3), END_AT_START) === 0) {
    this._endDataMode(false, chunk.subarray(3), done);
    return;
  }
  if (this._atDataStart && len >= 2 && chunk[0] === 0x2e && chunk[1] === 0x2e) {
    chunk = chunk.subarray(1);
    len--;
    this._atDataStart = false;
  }
  for (let lf = chunk.indexOf(LINE_STARTING_WITH_DOT, 1); lf !== -1 && lf + 1 < len - 2; lf = chunk.indexOf(LINE_STARTING_WITH_DOT, lf + 1)) {
    const i = lf + 1;
    if (Buffer.compare(chunk.subarray(i - 2, i + 3), END_SEQUENCE) === 0) {
      const buf = chunk.subarray(0, i);
      this._countDataBytes(buf.length);
      this._endDataMode(buf, chunk.subarray(i + 3), done);
      return;
    }
    if (chunk[i + 1] === 0x2e) {
      const buf = chunk.subarray(0, i);
      this._lastBytes = false;
      this._countDataBytes(buf.length);
      if (dataStream.writable) dataStream.write(buf);
      const rest = chunk.subarray(i + 1);
      setImmediate(() => this._feedDataStream(rest, done));
      return;
    }
  }
  this._lastBytes = chunk.length < 4 ? chunk : chunk.subarray(chunk.length - 4);
  if (this._lastBytes.length < chunk.length) {
    const buf = chunk.subarray(0, chunk.length - this._lastBytes.length);
    this._countDataBytes(buf.length);
    if (dataStream.writable) {
      const handled = dataStream.write(buf);
      if (!handled && !dataStream.destroyed) {
        const onDrain = () => {
          dataStream.removeListener('drain', onDrain);
          dataStream.removeListener('close', onDrain);
          done();
        };
        dataStream.once('drain', onDrain);
        dataStream.once('close', onDrain);
      } else {
        done();
      }
    } else {
      done();
    }
  } else {
    done();
  }
};
