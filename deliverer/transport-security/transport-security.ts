// Which TLS each MX host of a destination domain must offer, in this order (as RFC 8461 2
// asks): DANE, where the MX records and the host's TLSA records are DNSSEC-validated; else the
// domain's MTA-STS policy when it enforces; else the configured `--tls-policy`. Static routes
// (`--route`) are the operator's choice and get only the configured policy.
import type { Hop } from '../routes.ts';
import type { TlsPolicy } from '../smtp-pool.ts';
import { daneFor, mxSecure, type TlsaRecord } from './dane.ts';
import { mxMatches, type MtaStsPolicies, type StsPolicy } from './mta-sts.ts';
import type { ReportedPolicy, TlsReports } from './tls-report.ts';
import type { ValidatedDns } from './validated-dns.ts';

/** `dane`: TLS whose certificate matches one of `tlsa`. */
export type TlsLevel = TlsPolicy | 'dane';

export interface TlsRequirement {
  level: TlsLevel;
  tlsa?: TlsaRecord[];
  /** What decided the level, for replies and logs. */
  source: 'DANE' | 'MTA-STS' | '--tls-policy';
  /** The policy TLS reports count the host's sessions under. */
  report: ReportedPolicy;
  /** MTA-STS in testing mode: whether verified TLS to a listed MX would have succeeded is reported, never enforced. */
  testing?: { mxListed: boolean };
}

export type SecurityPlan =
  | { kind: 'hops'; hops: { hop: Hop; requirement: TlsRequirement }[] }
  /** No host may be used under the domain's policy now: a delay. */
  | { kind: 'none'; detail: string };

/** A TLSA record in presentation format, for TLS reports. */
const presentation = (r: TlsaRecord) => `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`;

export class TransportSecurity {
  readonly #configured: (domain: string) => TlsPolicy;
  readonly #dns?: ValidatedDns;
  readonly #sts?: MtaStsPolicies;
  readonly #reports: TlsReports;

  constructor(options: { configured: (domain: string) => TlsPolicy; dane?: ValidatedDns; mtaSts?: MtaStsPolicies; reports: TlsReports }) {
    this.#configured = options.configured;
    if (options.dane) this.#dns = options.dane;
    if (options.mtaSts) this.#sts = options.mtaSts;
    this.#reports = options.reports;
  }

  get reports(): TlsReports {
    return this.#reports;
  }

  /** A requirement of the configured policy only (static routes, and domains without DANE or MTA-STS). */
  configured(domain: string, report: ReportedPolicy = { type: 'no-policy-found', domain, text: [] }): TlsRequirement {
    return { level: this.#configured(domain), source: '--tls-policy', report };
  }

  async plan(domain: string, hops: Hop[]): Promise<SecurityPlan> {
    const [sts, secure] = await Promise.all([
      this.#sts?.policyFor(domain) ?? { kind: 'none' as const },
      this.#dns ? mxSecure(this.#dns, domain) : false,
    ]);
    if (sts.kind === 'failed') this.#reports.record({ policy: { type: 'sts', domain, text: [] }, failure: { type: sts.resultType, detail: sts.detail } });
    const policy = sts.kind === 'policy' && sts.policy.mode !== 'none' ? sts.policy : undefined;
    const planned: { hop: Hop; requirement: TlsRequirement }[] = [];
    const refused: string[] = [];
    for (const hop of hops) {
      const requirement = await this.#requirement(domain, hop, secure, policy, refused);
      if (requirement) planned.push({ hop, requirement });
    }
    return planned.length ? { kind: 'hops', hops: planned } : { kind: 'none', detail: refused.join('; ') };
  }

  async #requirement(domain: string, hop: Hop, secure: boolean, policy: StsPolicy | undefined, refused: string[]): Promise<TlsRequirement | undefined> {
    if (secure && this.#dns) {
      const dane = await daneFor(this.#dns, hop.name, hop.port);
      if (dane.kind === 'failed') {
        refused.push(`${hop.name}: DANE: ${dane.detail}`);
        this.#reports.record({ policy: { type: 'tlsa', domain, text: [] }, failure: { type: 'dnssec-invalid', mxHost: hop.name, detail: dane.detail } });
        return undefined;
      }
      if (dane.kind === 'dane') return { level: 'dane', tlsa: dane.records, source: 'DANE', report: { type: 'tlsa', domain, text: dane.records.map(presentation) } };
      // Validated records, none of them usable: encrypted, not authenticated (RFC 7672 2.2).
      if (dane.kind === 'unusable') return { level: 'required', source: 'DANE', report: { type: 'tlsa', domain, text: [] } };
    }
    if (!policy) return this.configured(domain);
    const report: ReportedPolicy = { type: 'sts', domain, text: policy.text, mxHosts: policy.mx };
    const mxListed = policy.mx.some((pattern) => mxMatches(hop.name, pattern));
    if (policy.mode === 'testing') return { ...this.configured(domain, report), testing: { mxListed } };
    if (!mxListed) {
      refused.push(`${hop.name} is not among the MTA-STS policy's mx (${policy.mx.join(', ')})`);
      this.#reports.record({ policy: report, failure: { type: 'validation-failure', mxHost: hop.name, detail: 'MX host not listed in the policy' } });
      return undefined;
    }
    return { level: 'verified', source: 'MTA-STS', report };
  }
}
