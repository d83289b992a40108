// One delivery attempt of one submission: fan out, skip suppressed recipients, resolve each
// domain's route, sign, send identical copies for a destination in one transaction, and
// return an outcome per recipient. What the outcomes become (events, retries, suppression)
// is decided by the delivery core (delivery-core.ts).
import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { ConfigStore } from '../shared/config/store.ts';
import { verpReturnPath } from '../shared/mail/verp.ts';
import { replyLine, type ReplyName } from '../shared/smtp-replies.ts';
import type { Submission } from '../shared/submission-record.ts';
import type { CompiledDomain } from '../shared/config/types.ts';
import { BOUNCE_CLASS, classifyReply, parseReply } from './bounce-class.ts';
import { dkimSignatureField, relaxedBodyHash } from './dkim.ts';
import { bodyContent, fanOut, type Copy, type RcptType } from './fan-out.ts';
import type { Hop, RouteResolver } from './routes.ts';
import { TransactionError, type SmtpPool } from './smtp-pool.ts';
import type { TlsRequirement, TransportSecurity } from './transport-security/transport-security.ts';
import type { AdaptiveShaper } from './shaping/adaptive-shaper.ts';
import { messageTracking, trackCopies, trackingBaseUrl, type TrackingSetup } from './tracking/tracked-copies.ts';
import { addListUnsubscribe } from './list-unsubscribe.ts';

export interface DeliveryJob {
  submission: Submission;
  raw: Buffer;
  /** On a retry, only these recipients (lower case); on the first attempt, all. */
  only?: string[];
  /** Attempts made before this one. */
  attempt: number;
}

/**
 * What one attempt did for one recipient. `reply` is the remote server's answer, or, where
 * `ours` names it, a reply of mtrelay's catalogue (no remote answer to report).
 */
export type RecipientOutcome = { rcptTo: string; rcptType: RcptType } & (
  | { kind: 'delivered'; reply: string; remote: string; tls: boolean; tracked?: { opens: boolean; clicks: boolean } }
  | { kind: 'deferred' | 'bounced'; reply: string; bounceClass: number; remote?: string; ours?: ReplyName }
  | { kind: 'suppressed' }
);

export interface DeliveryDeps {
  store: ConfigStore;
  routes: RouteResolver;
  pool: SmtpPool;
  /** The TLS each MX host must offer: DANE, MTA-STS or the configured policy. */
  security: TransportSecurity;
  /** Per-provider limits that back off on throttling replies; without it, the pool's per-destination limits. */
  shaper?: AdaptiveShaper;
  /** Whether mail to the address is held back; `transactional` for mail marked so (a complaint's entry does not hold it back). */
  isSuppressed: (namespace: string, address: string, transactional: boolean) => boolean;
  /** Domain of the VERP return path; without it the envelope sender is kept. */
  bounceDomain?: string;
  /** Open and click tracking; without it, messages that ask for tracking go untracked (with a warning). */
  tracking?: TrackingSetup;
  logger: Logger;
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** VERP: bounces come back to an address that names the transmission (and recipient). */
export function returnPath(submission: Submission, recipients: string[], bounceDomain: string | undefined): string {
  // A null sender stays null: bounces of bounces would loop.
  if (!bounceDomain || submission.mailFrom === '') return submission.mailFrom;
  return verpReturnPath(submission.transmissionId, recipients, bounceDomain);
}

/** What the parts of one attempt share. */
interface AttemptRun {
  job: DeliveryJob;
  log: Logger;
  /** Bounds the copies materialized at once. */
  limit: ReturnType<typeof pLimit>;
  /** The relaxed body hash of a copy's body, computed once per distinct body. */
  bodyHash: (copy: Copy) => string;
}

/** Copies materialized (signed) at once per attempt, to bound the work in flight on big fan-outs. */
const MATERIALIZED_AT_ONCE = 8;

/** A failure answered by the remote server (or, with `ours`, by mtrelay): bounce for 5xx, delay otherwise. */
function failure(copy: Copy, reply: string, remote?: string, ours?: ReplyName, bounceClass?: number): RecipientOutcome {
  const { code, enhanced, text } = parseReply(reply);
  const base = {
    rcptTo: copy.rcptTo, rcptType: copy.rcptType, reply, bounceClass: bounceClass ?? classifyReply(code, enhanced, text),
    ...(remote ? { remote } : {}), ...(ours ? { ours } : {}),
  };
  return code >= 500 ? { ...base, kind: 'bounced' } : { ...base, kind: 'deferred' };
}

export class Deliverer {
  readonly #deps: DeliveryDeps;

  constructor(deps: DeliveryDeps) {
    this.#deps = deps;
  }

  async attempt(job: DeliveryJob, log: Logger = this.#deps.logger): Promise<RecipientOutcome[]> {
    const only = job.only && new Set(job.only);
    const copies = fanOut(job.raw, job.submission).filter((c) => !only || only.has(c.rcptTo.toLowerCase()));
    const outcomes: RecipientOutcome[] = [];
    const byDomain = new Map<string, Copy[]>();
    for (const copy of copies) {
      if (this.#deps.isSuppressed(job.submission.namespace, copy.rcptTo, job.submission.attributes.transactional === true)) {
        outcomes.push({ rcptTo: copy.rcptTo, rcptType: copy.rcptType, kind: 'suppressed' });
        continue;
      }
      const domain = domainOf(copy.rcptTo);
      const group = byDomain.get(domain);
      if (group) group.push(copy);
      else byDomain.set(domain, [copy]);
    }
    this.#track(job, [...byDomain.values()].flat(), log);
    const bodyHashes = new Map<Buffer, string>();
    const run: AttemptRun = {
      job, log, limit: pLimit(MATERIALIZED_AT_ONCE),
      // Untracked copies share the one body: hashed once, and only if something is signed.
      bodyHash: (copy) => {
        let hash = bodyHashes.get(copy.body);
        if (hash === undefined) bodyHashes.set(copy.body, (hash = relaxedBodyHash(bodyContent(copy))));
        return hash;
      },
    };
    const perDomain = await Promise.all([...byDomain].map(([domain, group]) => this.#deliverDomain(run, domain, group)));
    return outcomes.concat(perDomain.flat());
  }

  /**
   * Gives each copy its own tracked body when the message is tracked, and its own one-click
   * unsubscribe link when it is not transactional; a message that cannot be tracked goes as it is.
   */
  #track(job: DeliveryJob, copies: Copy[], log: Logger): void {
    const { tracking: setup } = this.#deps;
    const ring = setup?.keys();
    const baseUrl = ring && trackingBaseUrl(job.submission, this.#deps.store, setup);
    const optedOut = this.#deps.store.current?.document.namespaces[job.submission.namespace]?.settings?.listUnsubscribe === false;
    if (ring && baseUrl && !optedOut) addListUnsubscribe(job.raw, copies, job.submission, { baseUrl, bounceDomain: this.#deps.bounceDomain }, ring, setup!.lifetimeSeconds);
    const decided = messageTracking(job.submission, this.#deps.store, setup);
    if (!decided.tracking) {
      if (decided.missing) log.warn({ reason: decided.missing }, 'tracking asked for but not possible; delivering untracked');
      return;
    }
    try {
      trackCopies(job.raw, copies, job.submission, decided.tracking, setup!.keys()!, setup!.lifetimeSeconds);
    } catch (error) {
      // A message whose MIME cannot be read for tracking is still delivered, as the sender wrote it.
      log.warn({ err: error }, 'tracking failed; delivering untracked');
    }
  }

  async #deliverDomain(run: AttemptRun, domain: string, copies: Copy[]): Promise<RecipientOutcome[]> {
    const route = await this.#deps.routes.resolve(domain);
    if (route.kind !== 'hops') {
      // The domain itself decides: the address can never receive mail (class 10), or DNS failed for now (class 21).
      return copies.map((c) => failure(c, route.line, undefined, route.reply, route.bounceClass));
    }
    const { security } = this.#deps;
    const plan = route.static ? { kind: 'hops' as const, hops: route.hops.map((hop) => ({ hop, requirement: security.configured(domain) })) } : await security.plan(domain, route.hops);
    if (plan.kind === 'none') {
      const reply = replyLine('TLS_POLICY_NO_HOST', { domain, detail: plan.detail });
      return copies.map((c) => failure(c, reply, undefined, 'TLS_POLICY_NO_HOST', BOUNCE_CLASS.TIMEOUT));
    }
    // Recipients that receive identical bytes share one transaction: same header, same body buffer
    // (untracked copies share it; a tracked copy has its own).
    const groups = new Map<string, Copy[]>();
    const bodies = new Map<Buffer, number>();
    for (const copy of copies) {
      if (!bodies.has(copy.body)) bodies.set(copy.body, bodies.size);
      const digest = `${createHash('sha256').update(copy.header).digest('hex')}:${bodies.get(copy.body)}`;
      const group = groups.get(digest);
      if (group) group.push(copy);
      else groups.set(digest, [copy]);
    }
    const results = await Promise.all([...groups.values()].map((group) => run.limit(() => this.#sendGroup(run, domain, plan.hops, group))));
    return results.flat();
  }

  /** The sending domain's key: the account's SendingDomain, or for sandbox mail (which the relay lets every account send) whichever claims it. */
  #signingDomain(submission: Submission): CompiledDomain | undefined {
    const { store } = this.#deps;
    return submission.sandbox ? store.claimedDomain(submission.sendingDomain) : store.sendingDomain(submission.namespace, submission.sendingDomain);
  }

  /** The copy as sent, in pieces that share the body, signed over its header and the shared body hash; undefined when there is no key to sign with. */
  async #materialize(run: AttemptRun, copy: Copy): Promise<Buffer[] | undefined> {
    const domain = this.#signingDomain(run.job.submission);
    if (!domain?.dkimPrivateKey) return undefined;
    const key = { domainName: domain.domain, keySelector: domain.dkimSelector, privateKey: domain.dkimPrivateKey };
    return [await dkimSignatureField(copy.header, run.bodyHash(copy), key), copy.header, copy.body];
  }

  async #sendGroup(run: AttemptRun, domain: string, hops: { hop: Hop; requirement: TlsRequirement }[], group: Copy[]): Promise<RecipientOutcome[]> {
    const { job, log } = run;
    let message: Buffer[] | undefined;
    try {
      message = await this.#materialize(run, group[0]!);
    } catch (error) {
      // Never unsigned: the recipients wait on the ladder while an operator fixes the key.
      log.error({ err: error }, 'DKIM signing failed');
      const key = this.#signingDomain(job.submission);
      const reply = replyLine('DKIM_SIGNING_FAILED', { domain: job.submission.sendingDomain, selector: key?.dkimSelector ?? '' });
      return group.map((c) => failure(c, reply, undefined, 'DKIM_SIGNING_FAILED', BOUNCE_CLASS.ADMIN_FAILURE));
    }
    if (!message) {
      // The key went away after the relay accepted the message (a Secret deleted): it waits, never goes unsigned.
      log.error({ domain: job.submission.sendingDomain }, 'no DKIM key for the sending domain; not sending unsigned');
      const reply = replyLine('DKIM_KEY_MISSING', { domain: job.submission.sendingDomain });
      return group.map((c) => failure(c, reply, undefined, 'DKIM_KEY_MISSING', BOUNCE_CLASS.ADMIN_FAILURE));
    }
    const to = group.map((c) => c.rcptTo);
    const from = returnPath(job.submission, to, this.#deps.bounceDomain);
    let lastError = 'no address to try';
    for (const { hop, requirement } of hops) {
      for (const address of hop.addresses) {
        const remote = `${hop.name}[${address}]:${hop.port}`;
        const shaper = this.#deps.shaper;
        try {
          const result = await this.#deps.pool.send(hop, address, requirement, { from, to, message }, shaper?.laneFor(hop.name));
          if (shaper) for (const reply of [result.response, ...result.rejected.values()]) shaper.observe(hop.name, reply);
          const accepted = new Set(result.accepted.map((a) => a.toLowerCase()));
          const rejected = new Map([...result.rejected].map(([a, r]) => [a.toLowerCase(), r]));
          return group.map((copy): RecipientOutcome => {
            const key = copy.rcptTo.toLowerCase();
            if (accepted.has(key)) {
              return { rcptTo: copy.rcptTo, rcptType: copy.rcptType, kind: 'delivered', reply: result.response, remote, tls: result.tls, ...(copy.tracked ? { tracked: copy.tracked } : {}) };
            }
            return failure(copy, rejected.get(key) ?? result.response, remote);
          });
        } catch (error) {
          if (!(error instanceof TransactionError)) throw error;
          log.debug({ remote, err: error }, 'delivery attempt failed');
          shaper?.observe(hop.name, error.reply ?? error.greeting ?? '');
          if (!error.tryNextHost) {
            return group.map((copy) => (error.reply ? failure(copy, error.reply, remote)
              : failure(copy, replyLine('DELIVERY_INTERRUPTED', { detail: error.message }), remote, 'DELIVERY_INTERRUPTED', BOUNCE_CLASS.TRANSIENT)));
          }
          lastError = error.reply ?? error.message;
        }
      }
    }
    // Every host failed before a transaction: a delay, with the last remote reply if there was one, else ours.
    const remoteReply = /^\d{3} /.test(lastError);
    const reply = remoteReply ? lastError : replyLine('HOSTS_UNREACHABLE', { domain, detail: lastError });
    return group.map((c): RecipientOutcome => ({
      rcptTo: c.rcptTo, rcptType: c.rcptType, kind: 'deferred', reply, bounceClass: BOUNCE_CLASS.TIMEOUT, ...(remoteReply ? {} : { ours: 'HOSTS_UNREACHABLE' as const }),
    }));
  }
}
