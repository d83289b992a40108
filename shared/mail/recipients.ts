// Who one submission goes to, as the seed's fan-out rules say: the envelope recipients, then
// each X-MT-ATTR cc, bcc and archive address, each address once (any case). The deliverer
// makes one copy per entry; the relay counts them against a key's limits.
import type { MessageAttributes } from '../attributes/x-mt-attr.ts';

export type RcptType = 'to' | 'cc' | 'bcc' | 'archive';

/** Recipients in order to, cc, bcc, archive; an address seen before (any case) is skipped. */
export function recipients(submission: { rcptTo: string[]; attributes: MessageAttributes }): { email: string; type: RcptType }[] {
  const seen = new Set<string>();
  const out: { email: string; type: RcptType }[] = [];
  const add = (email: string, type: RcptType) => {
    const key = email.toLowerCase();
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ email, type });
  };
  for (const email of submission.rcptTo) add(email, 'to');
  for (const r of submission.attributes.cc) add(r.email, 'cc');
  for (const r of submission.attributes.bcc) add(r.email, 'bcc');
  for (const r of submission.attributes.archive) add(r.email, 'archive');
  return out;
}
