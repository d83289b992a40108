// MTA-STS (RFC 8461): a domain publishes, over HTTPS, which MX hosts it has and that they
// present valid certificates; `_mta-sts.<domain>` TXT names the policy's current id. Policies
// are cached for their max_age and fetched again when the id changes; a policy that cannot be
// fetched again is kept until it expires (RFC 8461 3.3, 5.1). mailauth reads the TXT record and
// parses the policy; the fetch is ours, to use the deliverer's resolver, trusted CAs and
// destination policy (the policy host is named by the recipient's domain: no SSRF).
import https from 'node:https';
import type { Resolver } from 'node:dns/promises';
import { parsePolicy, resolvePolicy } from 'mailauth/lib/mta-sts.js';
import type { DestinationPolicy } from '../destination-policy.ts';
import { setBounded } from './bounded-cache.ts';
import { permittedAddress } from './permitted-address.ts';

export interface StsPolicy {
  id: string;
  mode: 'enforce' | 'testing' | 'none';
  mx: string[];
  maxAgeSeconds: number;
  /** The policy as published, for TLS reports (RFC 8460 4.3 policy-string). */
  text: string[];
}

/** TLS-RPT's names for why a policy could not be had (RFC 8460 4.3). */
export type StsFailure = 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';

export type StsLookup =
  | { kind: 'none' }
  | { kind: 'policy'; policy: StsPolicy }
  | { kind: 'failed'; resultType: StsFailure; detail: string };

interface Cached { policy: StsPolicy; expires: number; checked: number }

/** How often a cached policy's TXT id is looked up again. */
const RECHECK_MS = 5 * 60_000;
/** Policies are small; RFC 8461 3.3 lets senders limit them (64 KiB, as Postfix's mta-sts-resolver). */
const MAX_POLICY_BYTES = 64 * 1024;
const CACHE_SIZE = 10_000;

/** Whether an MX host name matches a policy's `mx` pattern (RFC 8461 4.1: a wildcard is exactly one label). */
export function mxMatches(host: string, pattern: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  const wanted = pattern.toLowerCase().replace(/\.$/, '');
  if (!wanted.startsWith('*.')) return name === wanted;
  const dot = name.indexOf('.');
  return dot > 0 && name.slice(dot + 1) === wanted.slice(2);
}

export class MtaStsPolicies {
  readonly #resolver: Resolver;
  readonly #ca: (string | Buffer)[];
  readonly #destinations: DestinationPolicy;
  readonly #timeoutMs: number;
  readonly #cache = new Map<string, Cached>();
  /**
   * Domains found without a policy, or whose policy could not be had, with when: most domains
   * have none, and a policy host that is down must not hold every attempt for its timeout. They
   * are asked again after RECHECK_MS.
   */
  readonly #without = new Map<string, { at: number; lookup: StsLookup }>();

  /** `ca`: the CAs trusted for the policy hosts' certificates (the system's and --tls-ca). */
  constructor(options: { resolver: Resolver; ca: (string | Buffer)[]; destinations: DestinationPolicy; timeoutMs?: number }) {
    this.#resolver = options.resolver;
    this.#ca = options.ca;
    this.#destinations = options.destinations;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
  }

  async policyFor(domain: string): Promise<StsLookup> {
    const now = Date.now();
    const cached = this.#cache.get(domain);
    const live = cached && cached.expires > now ? cached : undefined;
    if (live && now - live.checked < RECHECK_MS) return { kind: 'policy', policy: live.policy };
    const known = this.#without.get(domain);
    if (!live && known && now - known.at < RECHECK_MS) return known.lookup;
    let id: string | false;
    try {
      id = await resolvePolicy(domain, { resolver: (name: string, type: string) => this.#resolver.resolve(name, type as 'TXT') });
    } catch (error) {
      // DNS trouble (or two STSv1 records) leaves a cached policy in force.
      if (live) return { kind: 'policy', policy: live.policy };
      return this.#remember(domain, now, { kind: 'failed', resultType: 'sts-policy-fetch-error', detail: `_mta-sts.${domain} TXT: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
    }
    // A removed TXT record does not end a policy early: it runs to its max_age (RFC 8461 8.3).
    if (!id && live) return { kind: 'policy', policy: live.policy };
    if (!id) return this.#remember(domain, now, { kind: 'none' });
    this.#without.delete(domain);
    if (live && live.policy.id === id) {
      live.checked = now;
      return { kind: 'policy', policy: live.policy };
    }
    try {
      const policy = await this.#fetch(domain, id);
      setBounded(this.#cache, domain, { policy, expires: now + policy.maxAgeSeconds * 1000, checked: now }, CACHE_SIZE);
      return { kind: 'policy', policy };
    } catch (error) {
      if (live) return { kind: 'policy', policy: live.policy };
      const failure = error as Error & { resultType?: StsFailure };
      return this.#remember(domain, now, { kind: 'failed', resultType: failure.resultType ?? 'sts-policy-fetch-error', detail: `https://mta-sts.${domain}/.well-known/mta-sts.txt: ${failure.message}` });
    }
  }

  #remember(domain: string, now: number, lookup: StsLookup): StsLookup {
    setBounded(this.#without, domain, { at: now, lookup }, CACHE_SIZE);
    return lookup;
  }

  async #fetch(domain: string, id: string): Promise<StsPolicy> {
    const host = `mta-sts.${domain}`;
    const body = await this.#get(host);
    let parsed: { mode: string; mx?: string[]; maxAge: number };
    try {
      parsed = parsePolicy(body) as typeof parsed;
    } catch (error) {
      throw Object.assign(new Error(`invalid policy: ${(error as Error).message}`), { resultType: 'sts-policy-invalid' });
    }
    return {
      id, mode: parsed.mode as StsPolicy['mode'], mx: parsed.mx ?? [], maxAgeSeconds: parsed.maxAge,
      text: body.split(/\r?\n/).map((l) => l.trim()).filter(Boolean),
    };
  }

  /** The policy file over HTTPS with a valid certificate for the host; no redirects (RFC 8461 3.3). */
  async #get(host: string): Promise<string> {
    const address = await permittedAddress(this.#resolver, this.#destinations, host);
    return new Promise((resolve, reject) => {
      const request = https.get({
        host: address, port: 443, path: '/.well-known/mta-sts.txt', servername: host,
        headers: { host, accept: 'text/plain' }, ca: this.#ca, rejectUnauthorized: true, minVersion: 'TLSv1.2', timeout: this.#timeoutMs, agent: false,
      }, (response) => {
        const type = String(response.headers['content-type'] ?? '');
        if (response.statusCode !== 200) {
          response.resume();
          reject(new Error(`HTTP ${response.statusCode} (redirects are not followed)`));
          return;
        }
        if (!/^text\/plain\b/i.test(type)) {
          response.resume();
          reject(Object.assign(new Error(`Content-Type "${type}", not text/plain`), { resultType: 'sts-policy-invalid' }));
          return;
        }
        const chunks: Buffer[] = [];
        let length = 0;
        response.on('data', (chunk: Buffer) => {
          length += chunk.length;
          if (length > MAX_POLICY_BYTES) request.destroy(Object.assign(new Error(`policy larger than ${MAX_POLICY_BYTES} bytes`), { resultType: 'sts-policy-invalid' }));
          else chunks.push(chunk);
        });
        response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        response.on('error', reject);
      });
      request.on('timeout', () => request.destroy(new Error('timed out')));
      request.on('error', (error: NodeJS.ErrnoException & { resultType?: StsFailure }) => {
        // Certificate errors are the policy host's WebPKI failing, reported as such (RFC 8460 4.3).
        if (!error.resultType && /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME/.test(error.code ?? '')) error.resultType = 'sts-webpki-invalid';
        reject(error);
      });
    });
  }
}
