// What an attempt's outcomes become: events for every recipient, one retry for the
// recipients that failed temporarily (or bounces once the ladder has run out), and a
// suppression entry for every hard bounce. Pure, so Kafka and standalone mode agree.
import { messageEvent, type MessageEvent, type MessageFacts } from '../shared/events.ts';
import { REPLIES, replyLine } from '../shared/smtp-replies.ts';
import type { Submission } from '../shared/submission-record.ts';
import { isHardBounce, parseReply } from './bounce-class.ts';
import type { RecipientOutcome } from './delivery.ts';
import { nextStep, type RetryPolicy } from './retry-policy.ts';
import type { SuppressionEntry } from './suppression-list.ts';

export interface OutcomePlan {
  events: MessageEvent[];
  retry?: { rung: string; attempts: number; only: string[]; notBefore: number };
  suppressions: SuppressionEntry[];
}

export interface PlanInput {
  submission: Submission;
  facts: MessageFacts;
  /** Attempts made before this one. */
  attemptsBefore: number;
  outcomes: RecipientOutcome[];
  policy: RetryPolicy;
  now: Date;
}

export function planOutcomes({ submission, facts, attemptsBefore, outcomes, policy, now }: PlanInput): OutcomePlan {
  const plan: OutcomePlan = { events: [], suppressions: [] };
  const recipient = (o: RecipientOutcome) => ({ rcptTo: o.rcptTo, rcptType: o.rcptType, numRetries: attemptsBefore });
  const event = (type: MessageEvent['type'], o: RecipientOutcome, extra: Partial<MessageEvent> = {}) =>
    plan.events.push(messageEvent(type, submission, facts, recipient(o), extra, now));
  if (attemptsBefore === 0) for (const o of outcomes) event('injection', o);

  const deferred = outcomes.filter((o) => o.kind === 'deferred');
  const step = deferred.length ? nextStep(policy, attemptsBefore + 1, Date.parse(submission.receivedAt), now.getTime()) : undefined;
  for (const o of outcomes) {
    if (o.kind === 'delivered') {
      // SparkPost's tracking flags: what this recipient's copy carried.
      const tracking = o.tracked ? { open_tracking: o.tracked.opens, click_tracking: o.tracked.clicks, initial_pixel: o.tracked.opens } : {};
      event('delivery', o, { raw_reason: o.reply, mx_ip: o.remote, tls: o.tls, ...tracking });
    } else if (o.kind === 'suppressed') {
      event('policy_rejection', o, { reason: 'Recipient is on the suppression list', raw_reason: replyLine('SUPPRESSED'), error_code: String(REPLIES.SUPPRESSED.code) });
    } else if (o.kind === 'bounced' || step?.kind === 'expire') {
      const expired = o.kind === 'deferred';
      const reason = expired ? `${o.reply} (gave up after ${attemptsBefore + 1} attempts)` : o.reply;
      event('bounce', o, { bounce_class: o.bounceClass, error_code: String(parseReply(o.reply).code || ''), raw_reason: reason, reason, ...(o.remote ? { mx_ip: o.remote } : {}) });
      if (!expired && isHardBounce(o.bounceClass)) {
        plan.suppressions.push({ namespace: submission.namespace, address: o.rcptTo.toLowerCase(), reason: o.reply, bounce_class: o.bounceClass, source: 'bounce', created: now.toISOString() });
      }
    } else {
      event('delay', o, { bounce_class: o.bounceClass, error_code: String(parseReply(o.reply).code || ''), raw_reason: o.reply, reason: o.reply, ...(o.remote ? { mx_ip: o.remote } : {}) });
    }
  }
  if (step?.kind === 'retry') {
    plan.retry = { rung: step.rung, attempts: attemptsBefore + 1, only: deferred.map((o) => o.rcptTo.toLowerCase()), notBefore: step.notBefore };
  }
  return plan;
}
