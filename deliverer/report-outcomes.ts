// Metrics and one log line per recipient for an attempt, the same in every runtime.
import type { Logger } from 'pino';
import type { Submission } from '../shared/submission-record.ts';
import type { RecipientOutcome } from './delivery.ts';
import { destinationOf } from './destination.ts';
import type { DelivererMetrics } from './metrics.ts';
import type { OutcomePlan } from './outcomes.ts';

/** The reply label of an outcome: the catalogue name when mtrelay decided, `remote` when the remote server answered. */
function replyLabel(o: RecipientOutcome): string {
  if (o.kind === 'suppressed') return 'SUPPRESSED';
  if (o.kind === 'delivered') return 'remote';
  return o.ours ?? 'remote';
}

/** `log` is the job's child logger (it carries the transmission id and namespace). */
export function reportOutcomes(plan: OutcomePlan, submission: Submission, outcomes: RecipientOutcome[], now: Date, metrics: DelivererMetrics, log: Logger): void {
  const byRecipient = new Map(outcomes.map((o) => [o.rcptTo, o]));
  for (const e of plan.events) {
    if (e.type === 'injection') continue;
    const outcome = byRecipient.get(e.rcpt_to);
    const destination = destinationOf(e.rcpt_to);
    metrics.outcomes.inc({ type: e.type, bounce_class: e.bounce_class === undefined ? '' : String(e.bounce_class), reply: outcome ? replyLabel(outcome) : 'remote', destination });
    metrics.accountOutcomes.inc({ account: submission.namespace, type: e.type });
    if (e.type === 'delivery') {
      metrics.deliverySeconds.observe((now.getTime() - Date.parse(submission.receivedAt)) / 1000);
      metrics.deliveries.inc({ destination, tls: String(outcome?.kind === 'delivered' && outcome.tls) });
      metrics.senderDeliveries.inc({ account: submission.namespace, sending_domain: submission.sendingDomain });
    }
  }
  if (plan.retry) metrics.retries.inc({ rung: plan.retry.rung });
  for (const o of outcomes) {
    log.info({
      rcptTo: o.rcptTo, rcptType: o.rcptType, result: o.kind,
      ...(o.kind !== 'suppressed' ? { reply: o.reply } : {}), ...('remote' in o && o.remote ? { remote: o.remote } : {}),
    }, 'delivery attempt');
  }
}
