// smtp-server derives the enhanced status code from the reply code alone (550 → 5.1.1),
// but the reply catalogue gives each reply its own (550 5.7.1, 550 5.6.0). smtp-server has
// no public option for that, so this one patch makes a reply text that already starts with
// an enhanced status code go out as it is. It is the only patch of a library's internals:
// package.json pins smtp-server's exact version, and test/relay/smtp-library.test.ts fails
// when an upgrade changes the behaviour patched here or the library's own replies.
// Imported once, for its effect.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

type Send = (code: number, data?: string | string[], context?: string | false) => void;
const prototype = SMTPConnection.prototype as unknown as { send: Send };
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
const originalSend = prototype.send;

prototype.send = function send(this: unknown, code, data, context) {
  const own = typeof data === 'string' && ENHANCED.test(data);
  return originalSend.call(this, code, data, own ? false : context);
};
