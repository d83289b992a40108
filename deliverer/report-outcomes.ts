// Metrics and one log line per recipient for an attempt, the same in every runtime.
import type { Logger } from 'pino';
import type { Submission } from '../shared/kafka/submission-record.ts';
import type { RecipientOutcome } from './delivery.ts';
import type { DelivererMetrics } from './metrics.ts';
import type { OutcomePlan } from './outcomes.ts';

export function reportOutcomes(plan: OutcomePlan, submission: Submission, outcomes: RecipientOutcome[], now: Date, metrics: DelivererMetrics, logger: Logger): void {
  for (const e of plan.events) {
    if (e.type === 'injection') continue;
    metrics.outcomes.inc({ type: e.type, bounce_class: e.bounce_class === undefined ? '' : String(e.bounce_class) });
    if (e.type === 'delivery') metrics.deliverySeconds.observe((now.getTime() - Date.parse(submission.receivedAt)) / 1000);
  }
  if (plan.retry) metrics.retries.inc({ rung: plan.retry.rung });
  for (const o of outcomes) {
    logger.info({
      transmissionId: submission.transmissionId, namespace: submission.namespace, rcptTo: o.rcptTo, rcptType: o.rcptType,
      result: o.kind, ...(o.kind !== 'suppressed' ? { reply: o.reply } : {}), ...('remote' in o && o.remote ? { remote: o.remote } : {}),
    }, 'delivery attempt');
  }
}
