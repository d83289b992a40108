// Checks the DNS records a SendingDomain asks its owner to publish, through a configurable
// resolver (--dns), so the check sees what receiving mail servers see.
import { Resolver } from 'node:dns/promises';
import { dkimRecordKey } from '../shared/config/credentials.ts';
import type { DnsRecord } from './resources.ts';

export type RecordCheck = 'found' | 'missing' | 'lookup_failed';

const NOT_THERE = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);
const bare = (name: string) => name.toLowerCase().replace(/\.$/, '');

export class DnsChecker {
  readonly #resolver: Resolver;

  constructor(servers: string[] = [], timeoutMs = 5000) {
    this.#resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
    if (servers.length) this.#resolver.setServers(servers);
  }

  async check(record: Omit<DnsRecord, 'verified'>): Promise<RecordCheck> {
    try {
      if (record.type === 'CNAME') {
        const targets = await this.#resolver.resolveCname(record.name);
        return targets.some((t) => bare(t) === bare(record.value)) ? 'found' : 'missing';
      }
      const texts = (await this.#resolver.resolveTxt(record.name)).map((chunks) => chunks.join(''));
      // DMARC: any record of the domain's own will do; its policy is the owner's choice.
      if (record.purpose === 'dmarc') return texts.some((t) => /^v=DMARC1\s*(;|$)/i.test(t.trim())) ? 'found' : 'missing';
      if (record.purpose === 'dkim') {
        const want = dkimRecordKey(record.value);
        return texts.some((t) => dkimRecordKey(t) === want) ? 'found' : 'missing';
      }
      // SPF: the domain's one v=spf1 record must include ours; other mechanisms may stay.
      const include = /include:(\S+)/.exec(record.value)?.[1];
      return texts.some((t) => t.startsWith('v=spf1') && t.split(/\s+/).some((m) => bare(m.replace(/^[+?~-]/, '')) === bare(`include:${include}`)))
        ? 'found' : 'missing';
    } catch (error) {
      return NOT_THERE.has((error as { code?: string }).code ?? '') ? 'missing' : 'lookup_failed';
    }
  }
}
