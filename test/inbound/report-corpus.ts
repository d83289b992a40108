// The corpus of reports in test/fixtures/reports, filled in for one transmission and recipient.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../kafka/broker.ts';

export const corpusDir = path.join(repoRoot, 'test', 'fixtures', 'reports');

export interface Expected {
  result: 'bounce' | 'complaint' | 'delayed' | 'ignored' | 'unmatched';
  type?: 'out_of_band' | 'spam_complaint';
  bounce_class?: number;
  error_code?: string;
  fbtype?: string;
  suppressed?: 'all' | 'non_transactional' | null;
}

export const expected = JSON.parse(readFileSync(path.join(corpusDir, 'expected.json'), 'utf8')) as Record<string, Expected>;
export const corpusFiles = readdirSync(corpusDir).filter((f) => f.endsWith('.eml')).sort();

export interface Fill { bounceAddress: string; fblAddress: string; transmissionId: string; namespace: string; rcpt: string }

export function filled(file: string, fill: Fill): Buffer {
  const text = readFileSync(path.join(corpusDir, file), 'utf8')
    .replaceAll('{{BOUNCE_ADDRESS}}', fill.bounceAddress).replaceAll('{{FBL_ADDRESS}}', fill.fblAddress)
    .replaceAll('{{TRANSMISSION_ID}}', fill.transmissionId).replaceAll('{{NAMESPACE}}', fill.namespace).replaceAll('{{RCPT}}', fill.rcpt);
  return Buffer.from(text.replace(/\r?\n/g, '\r\n'));
}
