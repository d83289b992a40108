// Classifies a remote reply the way SparkPost's bounce classes do, so reporting and
// suppression mean the same as on the hosted platforms customers compare us with.
// https://support.sparkpost.com/docs/deliverability/bounce-classification-codes

export const BOUNCE_CLASS = {
  UNDETERMINED: 1,
  INVALID_RECIPIENT: 10,
  SOFT_BOUNCE: 20,
  DNS_FAILURE: 21,
  MAILBOX_FULL: 22,
  TOO_LARGE: 23,
  TIMEOUT: 24,
  ADMIN_FAILURE: 25,
  NO_RCPT: 30,
  GENERIC: 40,
  MAIL_BLOCK: 50,
  SPAM_BLOCK: 51,
  SPAM_CONTENT: 52,
  PROHIBITED_ATTACHMENT: 53,
  RELAYING_DENIED: 54,
  TRANSIENT: 70,
} as const;

/** Classes after which the address is suppressed: it will never accept mail. */
const HARD = new Set<number>([BOUNCE_CLASS.INVALID_RECIPIENT, BOUNCE_CLASS.NO_RCPT]);

export function isHardBounce(bounceClass: number): boolean {
  return HARD.has(bounceClass);
}

/** The bounce class of a 5xx (or, at expiry, the last 4xx) reply. */
export function classifyReply(code: number, enhanced: string | undefined, text: string): number {
  const t = text.toLowerCase();
  const e = enhanced ?? '';
  if (/^[45]\.1\.[0-3]$|^[45]\.1\.6$/.test(e) || /user unknown|unknown user|no such (user|mailbox)|does not exist|recipient.*(rejected|invalid)|invalid recipient|mailbox (unavailable|not found)|doesn't have an? [^ ]+ account/.test(t)) {
    return BOUNCE_CLASS.INVALID_RECIPIENT;
  }
  if (/^[45]\.2\.2$/.test(e) || /mailbox full|over ?quota|quota exceeded|insufficient storage/.test(t)) return BOUNCE_CLASS.MAILBOX_FULL;
  if (/^[45]\.3\.4$/.test(e) || /too (large|big)|size limit|exceeds.*size/.test(t)) return BOUNCE_CLASS.TOO_LARGE;
  if (/relay(ing)? (denied|not permitted|access denied)/.test(t)) return BOUNCE_CLASS.RELAYING_DENIED;
  if (/spam|blacklist|blocklist|listed|reputation/.test(t)) return /content/.test(t) ? BOUNCE_CLASS.SPAM_CONTENT : BOUNCE_CLASS.SPAM_BLOCK;
  if (/attachment/.test(t)) return BOUNCE_CLASS.PROHIBITED_ATTACHMENT;
  if (/^[45]\.7\./.test(e) || /policy|blocked|denied/.test(t)) return BOUNCE_CLASS.MAIL_BLOCK;
  if (/^[45]\.4\.[4-7]$/.test(e)) return BOUNCE_CLASS.TIMEOUT;
  if (/^[45]\.4\./.test(e)) return BOUNCE_CLASS.DNS_FAILURE;
  if (code >= 400 && code < 500) return BOUNCE_CLASS.SOFT_BOUNCE;
  return BOUNCE_CLASS.GENERIC;
}

/** Splits "550 5.1.1 No such user" into its parts; tolerant of replies without an enhanced code. */
export function parseReply(reply: string): { code: number; enhanced?: string; text: string } {
  const match = /^(\d{3})[ -](?:(\d\.\d{1,3}\.\d{1,3}) )?(.*)$/s.exec(reply.trim());
  if (!match) return { code: 0, text: reply.trim() };
  return { code: Number(match[1]), ...(match[2] ? { enhanced: match[2] } : {}), text: match[3] ?? '' };
}
