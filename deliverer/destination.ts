// The mailbox provider a recipient belongs to, as a metric label: the few providers that
// hold most inboxes get their own value, every other domain is `other`, so the label stays
// bounded however many domains mail goes to.
const PROVIDERS: [provider: string, domains: RegExp][] = [
  ['gmail', /^(gmail|googlemail)\.com$/],
  ['yahoo', /^(yahoo\.[a-z.]+|ymail\.com|rocketmail\.com|aol\.com|aim\.com)$/],
  ['microsoft', /^(outlook|hotmail|live|msn|windowslive)\.[a-z.]+$/],
  ['apple', /^(icloud|me|mac)\.com$/],
];

/** `gmail`, `yahoo`, `microsoft`, `apple` or `other`, from the recipient's address. */
export function destinationOf(recipient: string): string {
  const domain = recipient.slice(recipient.lastIndexOf('@') + 1).toLowerCase();
  return PROVIDERS.find(([, domains]) => domains.test(domain))?.[0] ?? 'other';
}
