// What one API key, and one account on the sandbox domain, may send: the ApiKey's
// spec.limits and --sandbox-quota, on counters the whole fleet shares (shared/usage). A
// message counts once per recipient, as it is delivered. The checks at MAIL FROM and RCPT TO
// refuse early; the one after the final dot takes the room, atomically for every limit, and
// gives it back if the message is not stored.
import type { ApiKeyLimits } from '../shared/config/types.ts';
import { smtpReply, type SmtpReply } from '../shared/smtp-replies.ts';
import type { CounterWindow, LimitCheck, Reservation, UsageCounters } from '../shared/usage/usage-counters.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** Rolling hour in minute buckets: a message counts for 60 to 61 minutes. */
export const HOURLY: CounterWindow = { window: HOUR_MS, bucket: MINUTE_MS };
/** Rolling 24 hours in quarter-hour buckets: a message counts for 24 h to 24 h 15 min. */
export const DAILY: CounterWindow = { window: DAY_MS, bucket: 15 * MINUTE_MS };

const PERIODS = new Map<number, string>([[HOUR_MS, 'hour'], [DAY_MS, '24 hours']]);

export interface LimitedKey {
  /** `namespace/name` of the ApiKey. */
  id: string;
  limits?: ApiKeyLimits;
}

export const keyHourCounter = (keyId: string) => `key-hour:${keyId}`;
export const keyDayCounter = (keyId: string) => `key-day:${keyId}`;
export const sandboxCounter = (namespace: string) => `sandbox:${namespace}`;

/** Which of the fleet's limits a refusal was for: a label of mtrelay_relay_limit_refusals_total. */
export type LimitName = 'messages_per_hour' | 'messages_per_day' | 'recipients_per_message' | 'sandbox';

export class LimitRefusal {
  readonly limit: LimitName;
  readonly reply: SmtpReply;

  constructor(limit: LimitName, reply: SmtpReply) {
    this.limit = limit;
    this.reply = reply;
  }
}

export class SendLimits {
  readonly #counters: UsageCounters;
  readonly #sandboxQuota: number;

  constructor(counters: UsageCounters, sandboxQuota: number) {
    this.#counters = counters;
    this.#sandboxQuota = sandboxQuota;
  }

  #rateChecks(key: LimitedKey): LimitCheck[] {
    const checks: LimitCheck[] = [];
    if (key.limits?.messagesPerHour) checks.push({ counter: keyHourCounter(key.id), limit: key.limits.messagesPerHour, ...HOURLY });
    if (key.limits?.messagesPerDay) checks.push({ counter: keyDayCounter(key.id), limit: key.limits.messagesPerDay, ...DAILY });
    return checks;
  }

  #rateRefusal(key: LimitedKey, check: LimitCheck, wanted: number, retryAfterMs: number): LimitRefusal {
    const period = PERIODS.get(check.window) ?? `${check.window / 1000} seconds`;
    const limit: LimitName = check.window === HOUR_MS ? 'messages_per_hour' : 'messages_per_day';
    if (wanted > check.limit) {
      return new LimitRefusal(limit, smtpReply('KEY_LIMIT_BELOW_MESSAGE', { count: wanted, key: key.id, period, limit: check.limit }));
    }
    return new LimitRefusal(limit, smtpReply('KEY_RATE_LIMIT', { key: key.id, limit: check.limit, period, wanted, seconds: Math.ceil(retryAfterMs / 1000) }));
  }

  /** Before a transaction: refused when the key has no room for even one more message. */
  beforeMail(key: LimitedKey, now = Date.now()): LimitRefusal | undefined {
    return this.beforeRecipient(key, 0, now);
  }

  /** Before the envelope's next recipient, `accepted` being taken already in this transaction. */
  beforeRecipient(key: LimitedKey, accepted: number, now = Date.now()): LimitRefusal | undefined {
    const perMessage = key.limits?.recipientsPerMessage;
    if (perMessage !== undefined && accepted >= perMessage) {
      return new LimitRefusal('recipients_per_message', smtpReply('KEY_RECIPIENT_LIMIT', { key: key.id, limit: perMessage }));
    }
    for (const check of this.#rateChecks(key)) {
      if (this.#counters.count(check.counter, check.window, now) + accepted + 1 > check.limit) {
        return this.#rateRefusal(key, check, 1, this.#counters.retryAfterMs(check.counter, check.window, check.limit - accepted, now));
      }
    }
    return undefined;
  }

  /**
   * After the final dot, with every recipient known (X-MT-ATTR's too): takes room for them
   * under the key's limits and, from the sandbox domain, the account's quota; or throws.
   */
  take(key: LimitedKey, namespace: string, recipients: number, sandbox: boolean, now = Date.now()): Reservation {
    const perMessage = key.limits?.recipientsPerMessage;
    if (perMessage !== undefined && recipients > perMessage) {
      throw new LimitRefusal('recipients_per_message', smtpReply('KEY_RECIPIENT_LIMIT_WITH_ATTR', { count: recipients, key: key.id, limit: perMessage }));
    }
    const sandboxCheck: LimitCheck | undefined = sandbox ? { counter: sandboxCounter(namespace), limit: this.#sandboxQuota, ...DAILY } : undefined;
    const result = this.#counters.take([...(sandboxCheck ? [sandboxCheck] : []), ...this.#rateChecks(key)], recipients, now);
    if (result.ok) return result.reservation;
    if (result.refused === sandboxCheck) {
      throw new LimitRefusal('sandbox', smtpReply('SANDBOX_QUOTA', { limit: this.#sandboxQuota, namespace }));
    }
    throw this.#rateRefusal(key, result.refused, recipients, result.retryAfterMs);
  }
}
