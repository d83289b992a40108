// smtp-server derives the enhanced status code from the reply code alone (550 → 5.1.1),
// but our replies need their own (550 5.7.1, 550 5.6.0). A reply text that already starts
// with an enhanced status code is therefore sent as it is. Imported once, for its effect.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

type Send = (code: number, data?: string | string[], context?: string | false) => void;
const prototype = SMTPConnection.prototype as unknown as { send: Send };
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
const originalSend = prototype.send;

prototype.send = function send(this: unknown, code, data, context) {
  const own = typeof data === 'string' && ENHANCED.test(data);
  return originalSend.call(this, code, data, own ? false : context);
};
