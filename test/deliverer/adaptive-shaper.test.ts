// The adaptive shaper's arithmetic, on explicit clocks: which replies throttle, how the factor
// halves and recovers, and how two processes that exchange their usage counts (as the usage
// topic carries them) back off together, a late starter included.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdaptiveShaper, CUT, isThrottling, REPEATED_CUT, MIN_FACTOR, QUIET_MS, RECOVERY, SETTLE_MS, STEP_MS } from '../../deliverer/shaping/adaptive-shaper.ts';
import { DEFAULT_PROVIDER_RULES, providerRules, ruleForHost } from '../../deliverer/shaping/provider-rules.ts';
import { UsageCounters } from '../../shared/usage/usage-counters.ts';

const rules = providerRules({ throttler: { mx: ['*.throttle.test'], connections: 8, messagesPerConnection: 10, messagesPerSecond: 40 } },
  { connections: 10, messagesPerConnection: 100, messagesPerSecond: 0 });
const GMAIL_421 = '421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address';
const T0 = 1_800_000_000_000;

test('throttling replies are told from other temporary failures', () => {
  for (const reply of [GMAIL_421, '451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.',
    '421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints',
    '450 4.7.0 Sending rate exceeded, slow down', '421-4.7.28 rate limited']) {
    assert.ok(isThrottling(reply), reply);
  }
  for (const reply of ['451 4.3.0 Temporary failure', '421 4.4.2 Connection timed out', '452 4.2.2 Mailbox full', '550 5.7.1 rate this', '250 2.0.0 OK']) {
    assert.ok(!isThrottling(reply), reply);
  }
});

test('providers by MX host: defaults, a changed default, a new provider, and no provider', () => {
  assert.equal(ruleForHost(rules, 'gmail-smtp-in.l.google.com')?.name, 'gmail');
  assert.equal(ruleForHost(rules, 'mta5.am0.yahoodns.net.')?.name, 'yahoo');
  assert.equal(ruleForHost(rules, 'example-com.mail.protection.outlook.com')?.name, 'microsoft');
  assert.equal(ruleForHost(rules, 'mx1.throttle.test')?.name, 'throttler');
  assert.equal(ruleForHost(rules, 'mx.example.org'), undefined);
  assert.equal(ruleForHost(rules, 'google.com'), undefined, '*.google.com is below google.com');
  const changed = providerRules({ gmail: { connections: 3 } }, { connections: 10, messagesPerConnection: 100, messagesPerSecond: 0 });
  assert.deepEqual(changed.find((r) => r.name === 'gmail'), { ...DEFAULT_PROVIDER_RULES[0], connections: 3 });
  assert.throws(() => providerRules({ newcomer: { connections: 3 } }, { connections: 10, messagesPerConnection: 100, messagesPerSecond: 0 }), /provider "newcomer" .* needs mx patterns/);
});

test('one process: a throttling reply cuts at once, not twice in a step; quiet brings it back gradually', () => {
  const shaper = new AdaptiveShaper({ rules, counters: new UsageCounters() });
  assert.deepEqual(shaper.laneFor('mx1.throttle.test', ), { lane: 'throttler', connections: 8, messagesPerConnection: 10, messagesPerSecond: 40 });
  shaper.observe('mx1.throttle.test', GMAIL_421, T0);
  shaper.observe('mx2.throttle.test', GMAIL_421, T0 + 100);
  assert.equal(shaper.factor('throttler', T0 + 200), CUT, 'one cut for replies in the same step');
  shaper.observe('mx1.throttle.test', GMAIL_421, T0 + STEP_MS);
  assert.equal(shaper.factor('throttler', T0 + STEP_MS), CUT * REPEATED_CUT, 'cut harder in the next step: still far above the limit');
  // Its own counts come back in the step evaluations: still no second cut for those steps.
  assert.equal(shaper.factor('throttler', T0 + 2 * STEP_MS + SETTLE_MS + 1), CUT * REPEATED_CUT);
  for (let i = 0; i < 20; i++) shaper.observe('mx1.throttle.test', GMAIL_421, T0 + (3 + i) * STEP_MS);
  assert.equal(shaper.factor('throttler', T0 + 23 * STEP_MS), MIN_FACTOR, 'never below the floor');
  const quietFrom = T0 + 23 * STEP_MS;
  assert.equal(shaper.factor('throttler', quietFrom + QUIET_MS - STEP_MS), MIN_FACTOR, 'nothing before QUIET has passed');
  const later = shaper.factor('throttler', quietFrom + QUIET_MS + SETTLE_MS + 3 * STEP_MS);
  assert.ok(later > MIN_FACTOR && later <= MIN_FACTOR * RECOVERY ** 4 + 1e-9, `gradual: ${later}`);
  assert.equal(shaper.factor('throttler', quietFrom + QUIET_MS + SETTLE_MS + 100 * STEP_MS), 1, 'all the way back');
  const lane = shaper.laneFor('mx1.throttle.test');
  assert.equal(lane?.messagesPerSecond, 40);
  assert.equal(shaper.laneFor('mx.example.org'), undefined);
});

test('two processes that share their counts back off together, and one started later lands on the same factor', () => {
  const a = new UsageCounters();
  const b = new UsageCounters();
  const shaperA = new AdaptiveShaper({ rules, counters: a });
  const shaperB = new AdaptiveShaper({ rules, counters: b });
  assert.equal(shaperB.factor('throttler', T0), 1);
  shaperA.observe('mx1.throttle.test', GMAIL_421, T0);
  // What the usage topic does: A's changes reach B (a second later, as published).
  const exchange = () => { for (const record of a.takeChanges()) b.apply(record); };
  exchange();
  assert.equal(shaperB.factor('throttler', T0 + 1000), 1, 'not before the step has settled');
  assert.equal(shaperB.factor('throttler', T0 + STEP_MS + SETTLE_MS), CUT, 'within a step and the settling time');
  assert.equal(shaperA.factor('throttler', T0 + STEP_MS + SETTLE_MS), CUT, 'the process that cut does not cut again');
  const late = new UsageCounters();
  late.apply({ counter: 'shaping|throttled|throttler', source: 'a', start: T0 - (T0 % 1000), width: 1000, window: 1, count: 1 });
  assert.equal(new AdaptiveShaper({ rules, counters: late }).factor('throttler', T0 + STEP_MS + SETTLE_MS), CUT, 'a replayed history');
});
