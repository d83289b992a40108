// Every SMTP reply mtrelay writes, in one catalogue with a stable name per reply: the
// relay's answers to clients, the smtp-server library's own answers that clients meet, and
// the deliverer's own replies (the raw_reason of outcomes it decides without a remote
// answer). Metrics label replies by name, docs/smtp-replies.md is generated from this table
// (`npm run docs`), and tests compare both by name and full text.
import { MtrelayError, type ErrorCode } from './errors.ts';

export interface ReplyDefinition {
  code: number;
  /** RFC 3463 enhanced status code. */
  enhanced: string;
  /** The text after the codes; `{name}` marks a value filled in when the reply is made. */
  text: string;
  /** Who writes it: the relay, the SMTP library under the relay, the deliverer (in events), or the inbound role (to servers that return reports). */
  by: 'relay' | 'smtp-server' | 'deliverer' | 'inbound';
  when: string;
  action: string;
}

export const REPLIES = {
  // The relay, after the final dot and on the way there.
  ACCEPTED: {
    code: 250, enhanced: '2.0.0', text: 'OK {transmission_id}', by: 'relay',
    when: 'after the final dot, once the queue has stored the message (Kafka: acks=all)',
    action: 'nothing: the message is stored and will be delivered; keep the id to match events',
  },
  AUTH_FAILED: {
    code: 535, enhanced: '5.7.8', text: 'Sorry.', by: 'relay',
    when: 'AUTH with a wrong user name, an unknown, disabled or expired key, or a key without `smtp/send` (swaks prints `*** No authentication type succeeded`)',
    action: 'check that the key has the "Send via SMTP" permission and the user name is `smtp_mt_injection`',
  },
  AUTH_REVOKED: {
    code: 530, enhanced: '5.7.0', text: 'Authentication required: the API key of this session is no longer valid', by: 'relay',
    when: 'MAIL FROM in a session whose key was removed, disabled or expired since AUTH',
    action: 'authenticate again with a valid key',
  },
  AUTH_THROTTLED: {
    code: 421, enhanced: '4.7.0', text: 'Too many failed authentications from {address}; try again in {seconds} seconds', by: 'relay',
    when: 'at connect or AUTH, after `--auth-block-after` failures from the address within `--auth-window`, counted across all relays',
    action: 'fix the credentials, wait the given time',
  },
  NOT_READY: {
    code: 421, enhanced: '4.3.0', text: 'Service not ready (no configuration loaded); try again later', by: 'relay',
    when: 'a connection before the first config was loaded',
    action: 'retry later; `/readyz` of the pod says why it is not ready',
  },
  SHUTTING_DOWN: {
    code: 421, enhanced: '4.3.2', text: 'Service shutting down; try again later', by: 'relay',
    when: 'a connection that raced the start of a drain',
    action: 'reconnect (another pod answers)',
  },
  MESSAGE_TOO_BIG: {
    code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed maximum message size of {limit} bytes', by: 'relay',
    when: 'the message streamed past `--max-size` (nothing past the limit is kept in memory)',
    action: 'send a smaller message',
  },
  HEADER_TOO_BIG: {
    code: 552, enhanced: '5.3.4', text: 'Message header block exceeds {limit} bytes', by: 'relay',
    when: 'the header block is larger than `--max-header-size`',
    action: 'trim the headers',
  },
  NUL_BYTE: {
    code: 550, enhanced: '5.6.0', text: 'Message contains a NUL byte (RFC 5322 2.1)', by: 'relay',
    when: 'a NUL byte anywhere in the message',
    action: 'encode binary content (base64)',
  },
  HEADER_LINE_TOO_LONG: {
    code: 550, enhanced: '5.6.0', text: 'Header line {line} is longer than 998 characters (RFC 5322 2.1.1)', by: 'relay',
    when: 'a header line over 998 characters',
    action: 'fold long header lines',
  },
  HEADER_LINE_NOT_FIELD: {
    code: 550, enhanced: '5.6.0', text: 'Header line {line} is not a "Name: value" field', by: 'relay',
    when: 'a line of the header block that is neither a field nor a continuation',
    action: 'fix the header block (an empty line ends it)',
  },
  HEADER_STARTS_FOLDED: {
    code: 550, enhanced: '5.6.0', text: 'The message starts with a folded header line', by: 'relay',
    when: 'the first header line starts with white space',
    action: 'fix the header block',
  },
  NO_FROM: {
    code: 550, enhanced: '5.6.0', text: 'Message has no From header (RFC 5322 3.6)', by: 'relay',
    when: 'the header block has no From field',
    action: 'add a From header at a configured sending domain',
  },
  MULTIPLE_FROM: {
    code: 550, enhanced: '5.6.0', text: 'Message has more than one From header (RFC 5322 3.6)', by: 'relay',
    when: 'the header block has two or more From fields',
    action: 'send one From header',
  },
  FROM_WITHOUT_ADDRESS: {
    code: 550, enhanced: '5.6.0', text: 'From header has no address', by: 'relay',
    when: 'the From field names no mailbox',
    action: 'put an address in From',
  },
  FROM_WITHOUT_DOMAIN: {
    code: 550, enhanced: '5.6.0', text: 'From address <{address}> has no valid domain', by: 'relay',
    when: 'a From mailbox without a usable domain',
    action: 'use an address at a configured sending domain',
  },
  UNCONFIGURED_SENDING_DOMAIN: {
    code: 550, enhanced: '5.7.1', text: 'Unconfigured Sending Domain <{domain}>', by: 'relay',
    when: 'a From address whose domain is neither a SendingDomain of the key\'s namespace nor the sandbox domain (when one is set)',
    action: 'use a configured sending domain, or create a SendingDomain',
  },
  SENDING_DOMAIN_WITHOUT_DKIM_KEY: {
    code: 451, enhanced: '4.7.5', by: 'relay',
    text: 'Sending domain {domain} has no DKIM key yet (SendingDomain {resource}); mtrelay sends only signed mail',
    when: 'the From domain is a SendingDomain of the account, but its `<name>-dkim` Secret is missing or holds no usable private key (the operator has not made it yet, or the resources folder lacks it)',
    action: 'wait for the operator to create the key (the SendingDomain\'s status shows it), or put a `<name>-dkim` Secret with `privateKey` beside the SendingDomain in the resources folder',
  },
  SANDBOX_WITHOUT_DKIM_KEY: {
    code: 451, enhanced: '4.7.5', by: 'relay',
    text: 'The sandbox domain {domain} has no DKIM key; mtrelay sends only signed mail',
    when: '`--sandbox-domain` is set but no SendingDomain with a DKIM key claims that domain',
    action: 'the installer creates a SendingDomain for the sandbox domain (in any namespace) so that it has a key, or turns the sandbox off',
  },
  SANDBOX_QUOTA: {
    code: 550, enhanced: '5.7.1', by: 'relay',
    text: 'Sandbox domain limit of {limit} messages per 24 hours reached for account {namespace}; create a SendingDomain to send more',
    when: 'the account sent `--sandbox-quota` messages (one per recipient) from the sandbox domain in the last 24 hours, counted across all relays',
    action: 'create a SendingDomain for your own domain',
  },
  KEY_RATE_LIMIT: {
    code: 451, enhanced: '4.7.1', by: 'relay',
    text: 'Sending limit of API key {key} reached: {limit} messages per {period}; room for {wanted} more in {seconds} seconds',
    when: 'at MAIL FROM, RCPT TO or after the final dot, when the key\'s `spec.limits.messagesPerHour` or `messagesPerDay` would be passed (one message per recipient, counted across all relays)',
    action: 'retry later (an MTA queues and retries by itself); if the volume is expected, raise the ApiKey\'s limits; if not, the key may be stolen: disable it',
  },
  KEY_LIMIT_BELOW_MESSAGE: {
    code: 550, enhanced: '5.7.1', by: 'relay',
    text: 'Message has {count} recipients, more than API key {key} may send per {period} ({limit})',
    when: 'after the final dot, when one message has more recipients than the key\'s whole hourly or daily limit',
    action: 'split the message, or raise the ApiKey\'s limits',
  },
  KEY_RECIPIENT_LIMIT: {
    code: 452, enhanced: '4.5.3', by: 'relay',
    text: 'Too many recipients: API key {key} allows {limit} per message; send the others in another transaction',
    when: 'RCPT TO past the key\'s `spec.limits.recipientsPerMessage`',
    action: 'send the remaining recipients in another transaction (RFC 5321 4.5.3.1.10)',
  },
  KEY_RECIPIENT_LIMIT_WITH_ATTR: {
    code: 550, enhanced: '5.5.3', by: 'relay',
    text: 'Message has {count} recipients with X-MT-ATTR cc, bcc and archive; API key {key} allows {limit} per message',
    when: 'after the final dot, when envelope recipients and X-MT-ATTR addresses together pass the key\'s `spec.limits.recipientsPerMessage`',
    action: 'split the message',
  },
  ATTR_JSON: {
    code: 550, enhanced: '5.6.0', text: 'JSON parsing error in X-MT-ATTR: {detail}', by: 'relay',
    when: 'X-MT-ATTR is not valid JSON (after unfolding and RFC 2047 decoding)',
    action: 'fix the JSON; the detail says where',
  },
  ATTR_SCHEMA: {
    code: 550, enhanced: '5.6.0', text: 'X-MT-ATTR {field}: {problem}', by: 'relay',
    when: 'X-MT-ATTR is JSON but breaks [its schema](x-mt-attr.md)',
    action: 'fix the named field',
  },
  ATTR_REPEATED: {
    code: 550, enhanced: '5.6.0', text: 'X-MT-ATTR header: appears more than once', by: 'relay',
    when: 'two X-MT-ATTR fields in one message',
    action: 'merge them into one',
  },
  ATTR_TOO_MANY_ADDRESSES: {
    code: 550, enhanced: '5.6.0', text: 'X-MT-ATTR cc, bcc, archive: {count} addresses exceed the limit of {limit}', by: 'relay',
    when: 'X-MT-ATTR names more than `--max-attr-addresses` cc, bcc and archive addresses',
    action: 'split the message',
  },
  RELAY_BUSY: {
    code: 452, enhanced: '4.3.1', text: 'Message not accepted: the relay is holding as much message data as it may; try again later', by: 'relay',
    when: 'the message data of all DATA in progress on this relay passed `--max-in-flight-bytes` while this message arrived',
    action: 'retry later (another relay pod may take it at once); operators: more relay pods, or a larger budget with the memory to hold it',
  },
  TOO_MANY_CONNECTIONS: {
    code: 421, enhanced: '4.7.0', text: 'Too many connections from {address}; at most {limit} at once', by: 'relay',
    when: 'the client address already has `--max-connections-per-address` connections open to this relay',
    action: 'use fewer connections at once (or reuse them); behind NAT, ask the operator for a higher limit',
  },
  STORAGE_FULL: {
    code: 452, enhanced: '4.3.1', text: 'Message not queued: insufficient system storage; try again later', by: 'relay',
    when: 'standalone: the file system of `--state` is full, so the message could not be written to the queue',
    action: 'retry later; nothing was accepted. Operators: free space or grow the volume; mtrelay takes messages again as soon as writes succeed, without a restart',
  },
  QUEUE_UNAVAILABLE: {
    code: 451, enhanced: '4.3.0', text: 'Message not queued: the queue is unavailable; try again later', by: 'relay',
    when: 'the queue did not store the message within `--kafka-timeout`, or the producer is reconnecting',
    action: 'retry later; nothing was accepted',
  },
  INTERNAL_ERROR: {
    code: 451, enhanced: '4.3.0', text: 'Message not accepted: internal error, logged with session {session}; try again later', by: 'relay',
    when: 'a fault of mtrelay itself while checking or queueing the message (logged as "internal error in DATA" with the stack)',
    action: 'retry later; operators find the cause in the relay\'s log by the session id',
  },

  // The smtp-server library, on the relay's listeners. A test checks the library still writes these.
  AUTH_REQUIRED: {
    code: 530, enhanced: '5.7.0', text: 'Authentication required', by: 'smtp-server',
    when: 'MAIL FROM before AUTH',
    action: 'authenticate first; the relay is never an open relay',
  },
  STARTTLS_REQUIRED: {
    code: 538, enhanced: '5.7.0', text: 'Error: Must issue a STARTTLS command first', by: 'smtp-server',
    when: 'AUTH before STARTTLS while `--allow-auth-without-tls` is off',
    action: 'use STARTTLS (or port 465)',
  },
  TOO_MANY_RECIPIENTS: {
    code: 452, enhanced: '4.5.3', text: 'Error: too many recipients', by: 'smtp-server',
    when: 'RCPT TO past `--max-recipients`',
    action: 'send the remaining recipients in another transaction',
  },
  DECLARED_SIZE_TOO_BIG: {
    code: 552, enhanced: '5.3.4', text: 'Error: message exceeds fixed maximum message size {limit}', by: 'smtp-server',
    when: 'MAIL FROM with a SIZE= parameter over `--max-size`',
    action: 'send a smaller message',
  },
  DRAINING: {
    code: 421, enhanced: '4.4.2', text: 'Server shutting down', by: 'smtp-server',
    when: 'any command but EHLO/HELO on an open session while the relay drains (SIGTERM); to EHLO the library answers `421 Server shutting down` without an enhanced code (RFC 2034 3)',
    action: 'reconnect and resend',
  },
  COMMAND_TOO_LONG: {
    code: 421, enhanced: '4.4.2', text: 'Error: Command line too long', by: 'smtp-server',
    when: 'a command line over 16 KiB',
    action: 'send shorter lines',
  },

  // The deliverer's own replies: the raw_reason of events it decides without a remote answer.
  SUPPRESSED: {
    code: 554, enhanced: '5.7.1', text: 'Recipient address is suppressed', by: 'deliverer',
    when: '`policy_rejection`: the recipient is on the account\'s suppression list (a hard bounce before)',
    action: 'remove the address from the suppression list if it is valid again',
  },
  DOMAIN_NOT_FOUND: {
    code: 550, enhanced: '5.1.2', text: 'Domain {domain} does not exist (NXDOMAIN)', by: 'deliverer',
    when: '`bounce` (class 10): the recipient\'s domain does not exist',
    action: 'correct the address',
  },
  NULL_MX: {
    code: 550, enhanced: '5.1.10', text: 'Domain {domain} accepts no mail (null MX, RFC 7505)', by: 'deliverer',
    when: '`bounce` (class 10): the domain publishes a null MX',
    action: 'correct the address',
  },
  NO_MX_NO_ADDRESS: {
    code: 550, enhanced: '5.1.2', text: 'Domain {domain} has no MX and no address', by: 'deliverer',
    when: '`bounce` (class 10): neither MX nor A/AAAA records',
    action: 'correct the address',
  },
  ADDRESS_LITERAL_REFUSED: {
    code: 550, enhanced: '5.7.1', text: 'Recipient domain {domain} is an address literal; mail goes to domain names only', by: 'deliverer',
    when: '`bounce` (class 25): the recipient is `user@[address]` and no `--route` covers that literal',
    action: 'send to the recipient\'s domain name; an operator who must reach a literal adds a `--route` for it',
  },
  INTERNAL_DESTINATION: {
    code: 550, enhanced: '5.7.1', text: 'Domain {domain} resolves only to addresses mtrelay does not deliver to: {addresses}', by: 'deliverer',
    when: '`bounce` (class 25): every address of the domain\'s MX hosts (or of the domain) is loopback, private, link-local, shared, multicast or reserved, or in `--refuse-destination`',
    action: 'correct the domain\'s MX or address records; an operator who delivers to such a network on purpose allows it with `--allow-destination`',
  },
  DNS_LOOKUP_FAILED: {
    code: 451, enhanced: '4.4.3', text: 'DNS lookup of {query} failed: {error}', by: 'deliverer',
    when: '`delay` (class 21): the resolver failed (SERVFAIL, timeout) for the MX or an MX host\'s address',
    action: 'nothing: retried on the ladder; check `--dns` if it persists',
  },
  ROUTE_HOST_UNRESOLVED: {
    code: 451, enhanced: '4.4.3', text: 'Static route host {host} has no address', by: 'deliverer',
    when: '`delay` (class 21): the host of a `--route` does not resolve',
    action: 'fix the route or its DNS',
  },
  MX_HOSTS_UNRESOLVED: {
    code: 451, enhanced: '4.4.3', text: 'No MX host of {domain} has an address', by: 'deliverer',
    when: '`delay` (class 21): every MX host name fails to resolve',
    action: 'nothing: retried on the ladder',
  },
  HOSTS_UNREACHABLE: {
    code: 421, enhanced: '4.4.1', text: 'No host of {domain} could be reached; last: {detail}', by: 'deliverer',
    when: '`delay` (class 24): every address refused, timed out, or failed the TLS policy before a transaction',
    action: 'nothing: retried on the ladder; the detail names the host and the failure',
  },
  TLS_POLICY_NO_HOST: {
    code: 451, enhanced: '4.7.5', text: 'No MX host of {domain} may be used under its TLS policy: {detail}', by: 'deliverer',
    when: '`delay` (class 24): the domain\'s MTA-STS policy (mode enforce) lists none of its MX hosts, or the TLSA lookup of every MX host in its DNSSEC-signed zone failed',
    action: 'nothing on our side: retried on the ladder until the domain\'s policy, MX or DNS is fixed; the detail names each host and why',
  },
  DKIM_SIGNING_FAILED: {
    code: 451, enhanced: '4.7.5', text: 'DKIM signing for {domain} with selector {selector} failed; the sending domain\'s key is unusable', by: 'deliverer',
    when: '`delay` (class 25): the sending domain\'s DKIM key cannot sign (not an RSA key, or damaged); nothing is sent unsigned',
    action: 'fix the key in the domain\'s `<name>-dkim` Secret; the message is retried on the ladder and bounces at the retry expiry',
  },
  DKIM_KEY_MISSING: {
    code: 451, enhanced: '4.7.5', text: 'Sending domain {domain} has no DKIM key; nothing is sent unsigned', by: 'deliverer',
    when: '`delay` (class 25): the sending domain\'s key was removed after the relay accepted the message (its `<name>-dkim` Secret deleted or emptied)',
    action: 'restore the key; the message is retried on the ladder and bounces at the retry expiry',
  },
  DELIVERY_INTERRUPTED: {
    code: 451, enhanced: '4.3.0', text: 'Delivery interrupted: {detail}', by: 'deliverer',
    when: '`delay` (class 70): the connection failed during the transaction without a reply',
    action: 'nothing: retried on the ladder (the remote may have kept the message: a duplicate is possible)',
  },
  // The inbound role, to the servers that send bounces and feedback reports back.
  INBOUND_NOT_OURS: {
    code: 550, enhanced: '5.7.1', text: '<{address}> is not a bounce or feedback address of this server; it relays nothing', by: 'inbound',
    when: 'RCPT TO an address that is not a return path (`b+…@`) or feedback address (`fbl@`, `fbl+<domain>@`) of a `--bounce-domain`',
    action: 'nothing for a stranger; for a report that should arrive, check the bounce domain\'s MX and `--bounce-domain`',
  },
  INBOUND_TOO_BIG: {
    code: 552, enhanced: '5.3.4', text: 'Report larger than {limit} bytes', by: 'inbound',
    when: 'a report streamed past `--max-size` (nothing past the limit is kept)',
    action: 'nothing: a report that large returns the whole original; the sender may retry with headers only',
  },
  INBOUND_ACCEPTED: {
    code: 250, enhanced: '2.0.0', text: 'Report accepted ({result})', by: 'inbound',
    when: 'after the final dot, once its events and suppressions are stored; the result says what it was: bounce, complaint, delayed, ignored or unmatched',
    action: 'nothing',
  },
  INBOUND_NOT_STORED: {
    code: 451, enhanced: '4.3.0', text: 'Report not stored: {detail}; try again later', by: 'inbound',
    when: 'the events or suppressions could not be stored (Kafka unreachable, queue full)',
    action: 'nothing for the sender: it retries; for the operator, `/readyz` and the log say why',
  },
} as const satisfies Record<string, ReplyDefinition>;

export type ReplyName = keyof typeof REPLIES;

type Placeholders<T extends string> = T extends `${string}{${infer P}}${infer Rest}` ? P | Placeholders<Rest> : never;

/** The values a reply's text needs, by placeholder name. */
export type ReplyValues<N extends ReplyName> = Record<Placeholders<(typeof REPLIES)[N]['text']>, string | number>;

/** No argument for replies without placeholders, the values otherwise. */
export type ReplyArgs<N extends ReplyName> = [Placeholders<(typeof REPLIES)[N]['text']>] extends [never] ? [] : [ReplyValues<N>];

/** The reply's text with its values filled in (without the codes). */
export function replyText<N extends ReplyName>(name: N, ...[values]: ReplyArgs<N>): string {
  const vars = (values ?? {}) as Record<string, string | number>;
  return REPLIES[name].text.replace(/\{(\w+)\}/g, (_m, key: string) => {
    if (!(key in vars)) throw new Error(`reply ${name} needs a value for {${key}}`);
    return String(vars[key]).replace(/[\r\n]+/g, ' ');
  });
}

/** The whole reply line: `550 5.7.1 Unconfigured Sending Domain <example.org>`. */
export function replyLine<N extends ReplyName>(name: N, ...args: ReplyArgs<N>): string {
  const { code, enhanced } = REPLIES[name];
  return `${code} ${enhanced} ${replyText(name, ...args)}`;
}

/** A refusal that smtp-server writes as exactly this reply (its `responseCode` and message). */
export class SmtpReply extends MtrelayError {
  readonly responseCode: number;
  readonly reply: ReplyName;

  constructor(name: ReplyName, text: string) {
    const { code, enhanced } = REPLIES[name];
    super('MTR_ERR_SMTP_REPLY', `${enhanced} ${text}`);
    this.reply = name;
    this.responseCode = code;
  }

  /** The whole reply line as the client sees it. */
  get line(): string {
    return `${this.responseCode} ${this.message}`;
  }
}

export function smtpReply<N extends ReplyName>(name: N, ...args: ReplyArgs<N>): SmtpReply {
  return new SmtpReply(name, replyText(name, ...args));
}

/**
 * A refusal found below the SMTP layer (a malformed header block, a bad X-MT-ATTR): an error
 * with its own code that names the reply a client gets for it.
 */
export class RefusalError extends MtrelayError {
  readonly reply: ReplyName;

  constructor(code: ErrorCode, reply: ReplyName, text: string) {
    super(code, text);
    this.reply = reply;
  }

  toSmtpReply(): SmtpReply {
    return new SmtpReply(this.reply, this.message);
  }
}

export function refusal<N extends ReplyName>(code: ErrorCode, reply: N, ...args: ReplyArgs<N>): RefusalError {
  return new RefusalError(code, reply, replyText(reply, ...args));
}
