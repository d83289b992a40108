// Engagement events in SparkPost's track_event shape: what the tracker knows of an open or a
// click (the token's claims, and the request's client address and user agent).
import { randomUUID } from 'node:crypto';
import type { TrackingClaims } from '../shared/tracking/tokens.ts';
import { machineReason, type MachineReason } from './machine-requests.ts';

/** What every event the tracker makes says: whose link, from which client. */
export interface RecipientRequestEvent {
  event_id: string;
  timestamp: string;
  transmission_id: string;
  namespace: string;
  rcpt_to: string;
  ip_address: string;
  user_agent: string;
  campaign_id?: string;
}

export interface TrackEvent extends RecipientRequestEvent {
  type: 'open' | 'initial_open' | 'click';
  target_link_url?: string;
  /** True when the request looks automatic (a privacy proxy's prefetch, a link scanner); see machine-requests.ts. */
  machine: boolean;
  machine_reason?: MachineReason;
}

export function trackEvent(claims: TrackingClaims, request: { ip: string; userAgent: string }, now = new Date()): TrackEvent {
  const reason = machineReason(request);
  return {
    type: claims.kind as TrackEvent['type'], // the server routes only open and click tokens here
    event_id: randomUUID(),
    timestamp: now.toISOString(),
    transmission_id: claims.transmissionId,
    namespace: claims.namespace,
    rcpt_to: claims.rcptTo,
    ip_address: request.ip,
    user_agent: request.userAgent,
    ...(claims.target ? { target_link_url: claims.target } : {}),
    ...(claims.campaignId ? { campaign_id: claims.campaignId } : {}),
    machine: reason !== undefined,
    ...(reason ? { machine_reason: reason } : {}),
  };
}
