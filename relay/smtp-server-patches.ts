// The three patches of smtp-server's internals, for what it has no public option for. package.json
// pins smtp-server's exact version, and test/relay/relay-server.test.ts (1, 2) and
// test/relay/tls-certificates.test.ts (3) fail when an upgrade changes the behaviour patched
// here or the library's own replies. Imported once, for effect.
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
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

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
