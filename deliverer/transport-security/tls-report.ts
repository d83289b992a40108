// SMTP TLS Reporting (RFC 8460): every outbound TLS session, counted per destination domain
// and policy as success or by failure type. The counts are a metric at once, and a report per
// domain and UTC day in RFC 8460's JSON, which `tls-report-sender.ts` submits to the domain's
// `_smtp._tls` reporting addresses when daily reports are enabled.
import type { Counter } from 'prom-client';
import { domainLabel } from '../../shared/ops/domain-label.ts';

/** The policy a session was held to (RFC 8460 4.4). */
export interface ReportedPolicy {
  type: 'sts' | 'tlsa' | 'no-policy-found';
  /** The domain the policy belongs to (the recipient's domain). */
  domain: string;
  /** The policy text (STS) or the TLSA records in presentation format. */
  text: string[];
  /** STS: the policy's mx patterns. */
  mxHosts?: string[];
}

/** RFC 8460 4.3's result types. */
export type TlsResultType =
  | 'starttls-not-supported' | 'certificate-host-mismatch' | 'certificate-expired' | 'certificate-not-trusted'
  | 'validation-failure' | 'tlsa-invalid' | 'dnssec-invalid' | 'dane-required'
  | 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';

export interface TlsSession {
  policy: ReportedPolicy;
  /** Undefined for a successful session. */
  failure?: { type: TlsResultType; mxHost?: string; address?: string; localAddress?: string; detail?: string };
}

/** A certificate verification error of Node's TLS as a result type. */
export function certificateResult(code: string | undefined): TlsResultType {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'certificate-host-mismatch';
  if (code === 'CERT_HAS_EXPIRED') return 'certificate-expired';
  if (/SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY_LEAF|CERT_UNTRUSTED|CERT_REJECTED/.test(code ?? '')) return 'certificate-not-trusted';
  return 'validation-failure';
}

interface PolicyTally { policy: ReportedPolicy; successes: number; failures: Map<string, { detail: NonNullable<TlsSession['failure']>; count: number }> }

/** Days kept: today's, still counting, and yesterday's, waiting to be sent. */
const DAYS_KEPT = 2;
/** Domains tallied per day; beyond, sessions only count in the metric. */
const DOMAINS_PER_DAY = 10_000;

export const utcDay = (time = Date.now()) => new Date(time).toISOString().slice(0, 10);

export class TlsReports {
  /** day → domain → policy key → tally */
  readonly #days = new Map<string, Map<string, Map<string, PolicyTally>>>();
  readonly #metric?: Counter<'domain' | 'policy_type' | 'result'>;
  readonly #labelled = new Set<string>();

  constructor(metric?: Counter<'domain' | 'policy_type' | 'result'>) {
    this.#metric = metric;
  }

  record(session: TlsSession, now = Date.now()): void {
    const { policy, failure } = session;
    this.#metric?.inc({ domain: domainLabel(this.#labelled, policy.domain), policy_type: policy.type, result: failure?.type ?? 'success' });
    const day = utcDay(now);
    let domains = this.#days.get(day);
    if (!domains) {
      this.#days.set(day, (domains = new Map()));
      for (const old of [...this.#days.keys()].sort().slice(0, -DAYS_KEPT)) this.#days.delete(old);
    }
    let policies = domains.get(policy.domain);
    if (!policies) {
      if (domains.size >= DOMAINS_PER_DAY) return;
      domains.set(policy.domain, (policies = new Map()));
    }
    const key = JSON.stringify([policy.type, policy.text, policy.mxHosts]);
    let tally = policies.get(key);
    if (!tally) policies.set(key, (tally = { policy, successes: 0, failures: new Map() }));
    if (!failure) {
      tally.successes++;
      return;
    }
    const failureKey = JSON.stringify([failure.type, failure.mxHost, failure.address, failure.localAddress, failure.detail]);
    const entry = tally.failures.get(failureKey);
    if (entry) entry.count++;
    else tally.failures.set(failureKey, { detail: failure, count: 1 });
  }

  /** Domains with sessions on a UTC day. */
  domains(day: string): string[] {
    return [...this.#days.get(day)?.keys() ?? []];
  }

  /** Forgets a day once its reports are out. */
  forget(day: string): void {
    this.#days.delete(day);
  }

  /** The RFC 8460 report of one domain's sessions on one UTC day. */
  report(day: string, domain: string, submitter: { organization: string; contact: string; reportId: string }): object | undefined {
    const policies = this.#days.get(day)?.get(domain);
    if (!policies) return undefined;
    return {
      'organization-name': submitter.organization,
      'date-range': { 'start-datetime': `${day}T00:00:00Z`, 'end-datetime': `${day}T23:59:59Z` },
      'contact-info': submitter.contact,
      'report-id': submitter.reportId,
      policies: [...policies.values()].map(({ policy, successes, failures }) => {
        const failed = [...failures.values()];
        return {
          policy: {
            'policy-type': policy.type, 'policy-string': policy.text, 'policy-domain': policy.domain,
            ...(policy.mxHosts ? { 'mx-host': policy.mxHosts } : {}),
          },
          summary: { 'total-successful-session-count': successes, 'total-failure-session-count': failed.reduce((sum, f) => sum + f.count, 0) },
          ...(failed.length ? {
            'failure-details': failed.map(({ detail, count }) => ({
              'result-type': detail.type,
              ...(detail.localAddress ? { 'sending-mta-ip': detail.localAddress } : {}),
              ...(detail.mxHost ? { 'receiving-mx-hostname': detail.mxHost } : {}),
              ...(detail.address ? { 'receiving-ip': detail.address } : {}),
              'failed-session-count': count,
              ...(detail.detail ? { 'additional-information': detail.detail } : {}),
            })),
          } : {}),
        };
      }),
    };
  }
}
