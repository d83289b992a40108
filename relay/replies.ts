// Every reply the relay chooses itself, in one table, so that docs/smtp-replies.md and the
// code cannot drift apart. Replies that smtp-server makes on its own (syntax errors, 452
// for too many recipients, 503 bad sequence) keep that library's wording.

export interface ReplySpec {
  code: number;
  enhanced: string;
}

export const REPLIES = {
  ACCEPTED: { code: 250, enhanced: '2.0.0' },
  AUTH_FAILED: { code: 535, enhanced: '5.7.8' },
  AUTH_REQUIRED: { code: 530, enhanced: '5.7.0' },
  AUTH_REVOKED: { code: 530, enhanced: '5.7.0' },
  AUTH_THROTTLED: { code: 421, enhanced: '4.7.0' },
  SHUTTING_DOWN: { code: 421, enhanced: '4.3.2' },
  MESSAGE_TOO_BIG: { code: 552, enhanced: '5.3.4' },
  HEADER_TOO_BIG: { code: 552, enhanced: '5.3.4' },
  MALFORMED_MESSAGE: { code: 550, enhanced: '5.6.0' },
  UNCONFIGURED_SENDING_DOMAIN: { code: 550, enhanced: '5.7.1' },
  SANDBOX_QUOTA: { code: 550, enhanced: '5.7.1' },
  ATTR_INVALID: { code: 550, enhanced: '5.6.0' },
  QUEUE_UNAVAILABLE: { code: 451, enhanced: '4.3.0' },
  NOT_READY: { code: 421, enhanced: '4.3.0' },
} as const satisfies Record<string, ReplySpec>;

export type ReplyName = keyof typeof REPLIES;

/** An error that smtp-server turns into exactly this reply. */
export class SmtpReply extends Error {
  readonly responseCode: number;
  readonly reply: ReplyName;
  constructor(reply: ReplyName, text: string) {
    const spec = REPLIES[reply];
    super(`${spec.enhanced} ${text}`);
    this.name = 'SmtpReply';
    this.reply = reply;
    this.responseCode = spec.code;
  }

  /** The whole reply line as the client sees it. */
  get line(): string {
    return `${this.responseCode} ${this.message}`;
  }
}

export const reply = {
  accepted: (transmissionId: string) => `${REPLIES.ACCEPTED.enhanced} OK ${transmissionId}`,
  authFailed: () => new SmtpReply('AUTH_FAILED', 'Sorry.'),
  authRequired: () => 'Authentication required',
  authRevoked: () => new SmtpReply('AUTH_REVOKED', 'Authentication required: the API key of this session is no longer valid'),
  authThrottled: (address: string, retryAfterSeconds: number) =>
    new SmtpReply('AUTH_THROTTLED', `Too many failed authentications from ${address}; try again in ${retryAfterSeconds} seconds`),
  shuttingDown: () => new SmtpReply('SHUTTING_DOWN', 'Service shutting down; try again later'),
  messageTooBig: (limit: number) =>
    new SmtpReply('MESSAGE_TOO_BIG', `Message size exceeds fixed maximum message size of ${limit} bytes`),
  headerTooBig: (limit: number) =>
    new SmtpReply('HEADER_TOO_BIG', `Message header block exceeds ${limit} bytes`),
  malformed: (detail: string) => new SmtpReply('MALFORMED_MESSAGE', detail),
  unconfiguredDomain: (domain: string) => new SmtpReply('UNCONFIGURED_SENDING_DOMAIN', `Unconfigured Sending Domain <${domain}>`),
  sandboxQuota: (namespace: string, limit: number) =>
    new SmtpReply('SANDBOX_QUOTA', `Sandbox domain limit of ${limit} messages per 24 hours reached for account ${namespace}; create a SendingDomain to send more`),
  attrJson: (detail: string) => new SmtpReply('ATTR_INVALID', `JSON parsing error in X-MT-ATTR: ${detail}`),
  attrSchema: (detail: string) => new SmtpReply('ATTR_INVALID', `X-MT-ATTR ${detail}`),
  queueUnavailable: () => new SmtpReply('QUEUE_UNAVAILABLE', 'Message not queued: the queue is unavailable; try again later'),
  notReady: () => new SmtpReply('NOT_READY', 'Service not ready (no configuration loaded); try again later'),
};
