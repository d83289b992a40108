// Mailed TLS reports go out through the deliverer itself, as one attempt of a message from the
// operator's reporting address: signed with the key of the SendingDomain that claims its domain
// (never unsigned), routed, held to the recipient's TLS policy and shaped like any other mail.
// The envelope sender is null, so a report that bounces makes no bounce of its own. A report
// that fails is logged and not retried: the next day's follows.
import type { ConfigStore } from '../../shared/config/store.ts';
import { newTransmissionId } from '../../shared/ids.ts';
import type { Submission } from '../../shared/submission-record.ts';
import type { Deliverer } from '../delivery.ts';
import type { ReportMailer } from './tls-report-sender.ts';

export function reportMailer(deliverer: Deliverer, store: ConfigStore, from: string): ReportMailer {
  const domain = from.slice(from.lastIndexOf('@') + 1).toLowerCase();
  return {
    from,
    async deliver(to, raw) {
      const namespace = store.claimingNamespace(domain);
      if (!namespace) throw new Error(`${domain}, the domain of --tls-report-from, is no SendingDomain: reports are only sent signed`);
      const submission: Submission = {
        transmissionId: newTransmissionId(), namespace, apiKeyId: 'mtrelay/tls-reports', mailFrom: '', rcptTo: [to], sendingDomain: domain,
        attributes: { transactional: true, cc: [], bcc: [], archive: [], tags: [], metadata: {} },
        receivedAt: new Date().toISOString(), clientAddress: '127.0.0.1', tls: 'none', sandbox: true,
      };
      const [outcome] = await deliverer.attempt({ submission, raw, attempt: 0 });
      if (outcome?.kind !== 'delivered') throw new Error(`mailing the report to ${to}: ${outcome && 'reply' in outcome ? outcome.reply : outcome?.kind ?? 'no outcome'}`);
    },
  };
}
