// The return path the deliverer writes and the inbound role reads back (VERP): bounces come to
// b+<transmission id>+<local>=<domain>@<bounce domain> for a copy to one recipient, or to
// b+<transmission id>@<bounce domain> when that would pass RFC 5321's 64-octet local part.
// Complaints from feedback loops come to fbl@ or fbl+<sending domain>@ the bounce domain, and
// unsubscribe requests (List-Unsubscribe's mailto, the token in the subject) to unsubscribe@.
// Characters of the recipient's local part other than letters, digits, ".", "_" and "-" are
// written as "_", so the recipient read back from a return path is a hint: the report's own
// recipient field is preferred.

export type ReportAddress =
  | { kind: 'bounce'; transmissionId: string; recipientHint?: string }
  | { kind: 'feedback'; sendingDomain?: string }
  | { kind: 'unsubscribe' };

/** Where List-Unsubscribe's mailto sends: the token goes in the subject (a local part holds 64 octets, a token more). */
export function unsubscribeAddress(bounceDomain: string): string {
  return `unsubscribe@${bounceDomain}`;
}

/** The recipient as a return path writes it: `local=domain`, the local part's other characters as "_". */
function recipientToken(recipient: string): string {
  const at = recipient.lastIndexOf('@');
  return `${recipient.slice(0, at).replace(/[^A-Za-z0-9._-]/g, '_')}=${recipient.slice(at + 1).toLowerCase()}`;
}

export function verpReturnPath(transmissionId: string, recipients: string[], bounceDomain: string): string {
  const shared = `b+${transmissionId}@${bounceDomain}`;
  if (recipients.length !== 1) return shared;
  const verp = `b+${transmissionId}+${recipientToken(recipients[0]!)}`;
  return verp.length <= 64 ? `${verp}@${bounceDomain}` : shared; // RFC 5321 4.5.3.1.1
}

/** Whether `recipient` is the one a return path's hint was written for (compared without regard to case). */
export function matchesRecipientHint(recipient: string, hint: string): boolean {
  const at = hint.lastIndexOf('@');
  return recipientToken(recipient).toLowerCase() === `${hint.slice(0, at)}=${hint.slice(at + 1)}`.toLowerCase();
}

/** What an address of one of the bounce domains stands for; undefined for any other address. */
export function parseReportAddress(address: string, bounceDomains: readonly string[]): ReportAddress | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0) return undefined;
  const domain = address.slice(at + 1).toLowerCase();
  if (!bounceDomains.some((d) => d.toLowerCase() === domain)) return undefined;
  const local = address.slice(0, at);
  const bounce = /^b\+(\d{1,20})(?:\+([A-Za-z0-9._-]+)=([A-Za-z0-9.-]+))?$/i.exec(local);
  if (bounce) return { kind: 'bounce', transmissionId: bounce[1]!, ...(bounce[2] ? { recipientHint: `${bounce[2]}@${bounce[3]!.toLowerCase()}` } : {}) };
  const feedback = /^fbl(?:\+([A-Za-z0-9.-]+))?$/i.exec(local);
  if (feedback) return { kind: 'feedback', ...(feedback[1] ? { sendingDomain: feedback[1].toLowerCase() } : {}) };
  if (local.toLowerCase() === 'unsubscribe') return { kind: 'unsubscribe' };
  return undefined;
}
