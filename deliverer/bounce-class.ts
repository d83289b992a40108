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

/** The class an enhanced status code (RFC 3463) states by itself, if it is specific enough. */
function classByEnhancedCode(e: string, t: string): number | undefined {
  const [, subject, detail] = e.split('.').map(Number);
  if (subject === 1) return [0, 1, 2, 3, 6].includes(detail!) ? BOUNCE_CLASS.INVALID_RECIPIENT : BOUNCE_CLASS.GENERIC;
  if (subject === 2) return detail === 2 ? BOUNCE_CLASS.MAILBOX_FULL : detail === 3 ? BOUNCE_CLASS.TOO_LARGE : undefined;
  if (subject === 3) return detail === 4 ? BOUNCE_CLASS.TOO_LARGE : undefined;
  if (subject === 4) return [4, 7].includes(detail!) ? BOUNCE_CLASS.TIMEOUT : BOUNCE_CLASS.DNS_FAILURE;
  if (subject === 7) {
    // Security or policy: what kind, only the text tells.
    if (/relay(ing)? (denied|not permitted|access denied)|relay access/.test(t)) return BOUNCE_CLASS.RELAYING_DENIED;
    if (/spam|blacklist|blocklist|listed|reputation/.test(t)) return /content/.test(t) ? BOUNCE_CLASS.SPAM_CONTENT : BOUNCE_CLASS.SPAM_BLOCK;
    if (/attachment/.test(t)) return BOUNCE_CLASS.PROHIBITED_ATTACHMENT;
    return BOUNCE_CLASS.MAIL_BLOCK;
  }
  return undefined;
}

/**
 * The bounce class of a 5xx (or, at expiry, the last 4xx) reply. A specific enhanced status
 * code decides first: "Recipient address rejected: Access denied" with 5.7.1 is a policy
 * block, not an unknown user, and must not suppress the address. The text decides otherwise.
 */
export function classifyReply(code: number, enhanced: string | undefined, text: string): number {
  const t = text.toLowerCase();
  const e = enhanced ?? '';
  const byCode = e && !/\.0\.0$/.test(e) ? classByEnhancedCode(e, t) : undefined;
  if (byCode !== undefined) return byCode;
  if (/user unknown|unknown user|no such (user|mailbox)|does not exist|invalid recipient|mailbox (unavailable|not found)|doesn't have an? [^ ]+ account/.test(t)) {
    return BOUNCE_CLASS.INVALID_RECIPIENT;
  }
  if (/mailbox full|over ?quota|quota exceeded|insufficient storage/.test(t)) return BOUNCE_CLASS.MAILBOX_FULL;
  if (/too (large|big)|size limit|exceeds.*size/.test(t)) return BOUNCE_CLASS.TOO_LARGE;
  if (/relay(ing)? (denied|not permitted|access denied)|relay access/.test(t)) return BOUNCE_CLASS.RELAYING_DENIED;
  if (/spam|blacklist|blocklist|listed|reputation/.test(t)) return /content/.test(t) ? BOUNCE_CLASS.SPAM_CONTENT : BOUNCE_CLASS.SPAM_BLOCK;
  if (/attachment/.test(t)) return BOUNCE_CLASS.PROHIBITED_ATTACHMENT;
  if (/policy|blocked|denied/.test(t)) return BOUNCE_CLASS.MAIL_BLOCK;
  if (code >= 400 && code < 500) return BOUNCE_CLASS.SOFT_BOUNCE;
  return BOUNCE_CLASS.GENERIC;
}

/** Splits "550 5.1.1 No such user" into its parts; tolerant of replies without an enhanced code. */
export function parseReply(reply: string): { code: number; enhanced?: string; text: string } {
  const match = /^(\d{3})[ -](?:(\d\.\d{1,3}\.\d{1,3}) )?(.*)$/s.exec(reply.trim());
  if (!match) return { code: 0, text: reply.trim() };
  return { code: Number(match[1]), ...(match[2] ? { enhanced: match[2] } : {}), text: match[3] ?? '' };
}
