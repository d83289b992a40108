// Open and click tracking for one delivery attempt: whether a message is tracked (X-MT-ATTR
// first, then the account's settings), which host its links go through (the sending domain's
// tracking domain, else the account's, else the cluster's), and each recipient's body with its
// own signed tokens. The MIME structure is read once per attempt; a recipient costs filling in
// tokens. Archive copies are not tracked: an archiving mailbox that fetches images would count
// as opens the sender never had.
import type { ConfigStore } from '../../shared/config/store.ts';
import type { Submission } from '../../shared/submission-record.ts';
import { recipientSigner, type TrackingClaims, type TrackingKeyRing } from '../../shared/tracking/tokens.ts';
import type { Copy } from '../fan-out.ts';
import { fillTemplate, type TrackingUrls } from './fill-template.ts';
import { trackingTemplate } from './mime-template.ts';

export interface TrackingSetup {
  /** The keys tokens are signed with; undefined when none are configured (then nothing is tracked). */
  keys: () => TrackingKeyRing | undefined;
  /** The cluster's tracking base URL (scheme, host, optional port), for accounts and domains without a tracking domain. */
  clusterUrl?: string;
  /** How long a tracked link and pixel keep working. */
  lifetimeSeconds: number;
}

export interface MessageTracking {
  opens: boolean;
  clicks: boolean;
  /** e.g. https://track.example.com, with no trailing slash. */
  baseUrl: string;
}

/** Whether and where `submission` is tracked, or why not. */
export function messageTracking(submission: Submission, store: ConfigStore, setup: TrackingSetup | undefined):
  { tracking: MessageTracking } | { tracking?: undefined; missing?: string } {
  const namespace = store.current?.document.namespaces[submission.namespace];
  const settings = namespace?.settings;
  const opens = submission.attributes.openTracking ?? settings?.openTracking ?? false;
  const clicks = submission.attributes.clickTracking ?? settings?.clickTracking ?? false;
  if (!opens && !clicks) return {};
  if (!setup?.keys()) return { missing: 'no tracking keys are configured (--tracking-keys)' };
  const baseUrl = trackingBaseUrl(submission, store, setup);
  if (!baseUrl) return { missing: 'no tracking domain: set one on the SendingDomain or AccountSettings, or --tracking-url' };
  return { tracking: { opens, clicks, baseUrl } };
}

/** The host tracked links (and unsubscribe links) of `submission` go through: the sending domain's tracking domain, else the account's, else the cluster's. */
export function trackingBaseUrl(submission: Submission, store: ConfigStore, setup: TrackingSetup | undefined): string | undefined {
  const namespace = store.current?.document.namespaces[submission.namespace];
  const domain = namespace?.domains[submission.sendingDomain]?.trackingDomain ?? namespace?.settings?.trackingDomain;
  return domain ? `https://${domain}` : setup?.clusterUrl?.replace(/\/+$/, '');
}

function recipientUrls(ring: TrackingKeyRing, tracking: MessageTracking, base: Omit<TrackingClaims, 'kind'>): TrackingUrls {
  const links = new Map<string, string>(); // a target linked twice gets one token
  const sign = recipientSigner(ring, base); // targets are http(s): html-plan.ts only plans those
  return {
    link: (target) => {
      let url = links.get(target);
      if (!url) links.set(target, (url = `${tracking.baseUrl}/c/${sign('click', target)}`));
      return url;
    },
    pixel: (which) => `${tracking.baseUrl}/o/${sign(which)}.gif`,
  };
}

/**
 * Gives each copy but archive copies its own tracked body. Returns how many copies were
 * rewritten (0 when the message has no HTML to track).
 */
export function trackCopies(raw: Buffer, copies: Copy[], submission: Submission, tracking: MessageTracking, ring: TrackingKeyRing, lifetimeSeconds: number, now = Date.now()): number {
  const tracked = copies.filter((c) => c.rcptType !== 'archive');
  if (!tracked.length) return 0;
  const template = trackingTemplate(raw, tracking);
  if (!template) return 0;
  const expiresAt = Math.floor(now / 1000) + lifetimeSeconds;
  for (const copy of tracked) {
    const urls = recipientUrls(ring, tracking, {
      transmissionId: submission.transmissionId, rcptTo: copy.rcptTo, namespace: submission.namespace, expiresAt,
      ...(submission.attributes.campaignId ? { campaignId: submission.attributes.campaignId } : {}),
    });
    copy.body = fillTemplate(template, urls);
    copy.tracked = { opens: tracking.opens, clicks: tracking.clicks };
  }
  return tracked.length;
}
