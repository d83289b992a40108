// The few header values events report (Message-ID, From, Subject), read once per message.
import libmime from 'libmime';
import type { MessageFacts } from '../shared/events.ts';
import { fieldValues, headerBlockEnd, parseHeaderBlock } from '../shared/mail/headers.ts';

export function messageFacts(raw: Buffer): MessageFacts {
  const end = headerBlockEnd(raw);
  let fields: ReturnType<typeof parseHeaderBlock> = [];
  try {
    fields = parseHeaderBlock(raw.toString('utf8', 0, end === -1 ? raw.length : end));
  } catch {
    // the relay checked the headers; an odd one here only costs the event its subject
  }
  const decode = (v: string | undefined) => (v === undefined ? '' : v.includes('=?') ? libmime.decodeWords(v) : v);
  return {
    messageId: fieldValues(fields, 'message-id')[0]?.replace(/^<|>$/g, '') ?? '',
    friendlyFrom: decode(fieldValues(fields, 'from')[0]),
    subject: decode(fieldValues(fields, 'subject')[0]),
    size: raw.length,
  };
}
