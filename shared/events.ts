// Message events in SparkPost's shape, so existing webhook consumers understand them.
import { randomUUID } from 'node:crypto';
import type { Submission } from './submission-record.ts';

export type EventType = 'injection' | 'delivery' | 'delay' | 'bounce' | 'policy_rejection' | 'open' | 'click' | 'out_of_band' | 'spam_complaint';

export interface MessageEvent {
  type: EventType;
  event_id: string;
  timestamp: string;
  transmission_id: string;
  message_id: string;
  namespace: string;
  rcpt_to: string;
  rcpt_type: string;
  friendly_from: string;
  sending_domain: string;
  subject: string;
  msg_size: number;
  num_retries: number;
  queue_time: number;
  injection_time: string;
  campaign_id?: string;
  tags: string[];
  rcpt_meta: Record<string, unknown>;
  bounce_class?: number;
  error_code?: string;
  raw_reason?: string;
  reason?: string;
  mx_ip?: string;
  tls?: boolean;
  /** Delivery of a tracked copy: open pixels (the initial one too) and rewritten links. */
  open_tracking?: boolean;
  click_tracking?: boolean;
  initial_pixel?: boolean;
}

export interface MessageFacts {
  messageId: string;
  friendlyFrom: string;
  subject: string;
  size: number;
}

export function messageEvent(
  type: EventType,
  submission: Submission,
  facts: MessageFacts,
  recipient: { rcptTo: string; rcptType: string; numRetries: number },
  extra: Partial<MessageEvent> = {},
  now = new Date(),
): MessageEvent {
  return {
    type,
    event_id: randomUUID(),
    timestamp: now.toISOString(),
    transmission_id: submission.transmissionId,
    message_id: facts.messageId,
    namespace: submission.namespace,
    rcpt_to: recipient.rcptTo,
    rcpt_type: recipient.rcptType,
    friendly_from: facts.friendlyFrom,
    sending_domain: submission.sendingDomain,
    subject: facts.subject,
    msg_size: facts.size,
    num_retries: recipient.numRetries,
    queue_time: Math.max(0, now.getTime() - Date.parse(submission.receivedAt)),
    injection_time: submission.receivedAt,
    ...(submission.attributes.campaignId ? { campaign_id: submission.attributes.campaignId } : {}),
    tags: submission.attributes.tags,
    rcpt_meta: submission.attributes.metadata,
    ...extra,
  };
}
