// Events as SparkPost's webhooks post them, so receivers written for SparkPost read mtrelay's:
// each event wrapped as {"msys": {"message_event": {...}}}, {"msys": {"track_event": {...}}} or
// {"msys": {"unsubscribe_event": {...}}},
// the timestamp in Unix seconds (a string), tags as rcpt_tags, and the account (namespace) as
// subaccount. Every other field keeps its name.

const TRACK_EVENTS = new Set(['open', 'initial_open', 'click']);
const UNSUBSCRIBE_EVENTS = new Set(['list_unsubscribe', 'link_unsubscribe']);

export type StoredEvent = Record<string, unknown> & { type: string; event_id: string; namespace: string; timestamp: string };

export type SparkPostEvent = { msys: Record<string, Record<string, unknown>> };

/** Which SparkPost event class a type belongs to. */
export function eventClass(type: string): 'track_event' | 'unsubscribe_event' | 'message_event' {
  return TRACK_EVENTS.has(type) ? 'track_event' : UNSUBSCRIBE_EVENTS.has(type) ? 'unsubscribe_event' : 'message_event';
}

export function sparkPostEvent(event: StoredEvent): SparkPostEvent {
  const { namespace, timestamp, tags, ...rest } = event;
  const seconds = Math.floor(Date.parse(timestamp) / 1000);
  return {
    msys: {
      [eventClass(event.type)]: {
        ...rest,
        timestamp: String(Number.isFinite(seconds) ? seconds : timestamp),
        subaccount: namespace,
        ...(tags !== undefined ? { rcpt_tags: tags } : {}),
      },
    },
  };
}

/** What a new or changed webhook receives first, as SparkPost validates a webhook: one empty msys object. */
export const TEST_BATCH: SparkPostEvent[] = [{ msys: {} }];
