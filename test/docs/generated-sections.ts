// Sections of the docs made from the code: each lives between `<!-- generated:NAME -->` and
// `<!-- /generated:NAME -->` in a docs file. `npm run docs` rewrites them; the docs test fails
// when a file differs from what the code would write, so the two cannot drift apart.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isPair, isScalar, isSeq, parseDocument, type Pair } from 'yaml';
import { REPLIES, type ReplyDefinition } from '../../shared/smtp-replies.ts';
import { repoRoot } from '../kafka/broker.ts';

function replyTable(by: ReplyDefinition['by']): string {
  const rows = Object.entries(REPLIES).filter(([, r]) => r.by === by).map(([name, r]) =>
    `| \`${name}\` | \`${r.code} ${r.enhanced} ${r.text}\` | ${r.when} | ${r.action} |`);
  return ['| name | reply | when | what to do |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/**
 * The chart's values as a table: every value with its default and the text of the comment
 * above it that starts with "-- " (as helm-docs reads them). A map with such a comment is one
 * row (resources, nodeSelector); other maps are walked into.
 */
function chartValuesTable(): string {
  const doc = parseDocument(readFileSync(path.join(repoRoot, 'charts', 'mtrelay', 'values.yaml'), 'utf8'));
  const rows: string[] = [];
  const describe = (comment: string | null | undefined) => {
    const text = (comment ?? '').split('\n').map((l) => l.trim());
    const start = text.findIndex((l) => l.startsWith('-- '));
    return start === -1 ? '' : text.slice(start).join(' ').replace(/^-- /, '').replace(/\|/g, '\\|');
  };
  // The parser keeps the comment above a map's first key on the map itself.
  const walk = (pairs: Pair[], prefix: string, firstComment?: string | null) => {
    for (const [i, pair] of pairs.entries()) {
      if (!isPair(pair) || !isScalar(pair.key)) continue;
      const name = `${prefix}${String(pair.key.value)}`;
      const meaning = describe(pair.key.commentBefore ?? (i === 0 ? firstComment : undefined));
      if (isMap(pair.value) && !meaning && pair.value.items.length) {
        walk(pair.value.items as Pair[], `${name}.`, pair.value.commentBefore);
        continue;
      }
      const value = isSeq(pair.value) || isMap(pair.value) ? JSON.stringify(pair.value.toJSON()) : JSON.stringify(isScalar(pair.value) ? pair.value.value : null);
      rows.push(`| \`${name}\` | \`${value.replace(/\|/g, '\\|')}\` | ${meaning} |`);
    }
  };
  walk((doc.contents as { items: Pair[] }).items, '', (doc.contents as { commentBefore?: string | null }).commentBefore);
  return ['| value | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/** Section name → its generated Markdown, per docs file. */
export const GENERATED: Record<string, Record<string, () => string>> = {
  'smtp-replies.md': {
    'relay-replies': () => replyTable('relay'),
    'library-replies': () => replyTable('smtp-server'),
    'deliverer-replies': () => replyTable('deliverer'),
    'inbound-replies': () => replyTable('inbound'),
  },
  'configuration.md': {
    'chart-values': chartValuesTable,
  },
};

/** The document with every generated section written anew; throws when a marker is missing. */
export function regenerate(file: string, text: string): string {
  let out = text;
  for (const [name, make] of Object.entries(GENERATED[file] ?? {})) {
    const open = `<!-- generated:${name} -->`;
    const close = `<!-- /generated:${name} -->`;
    const start = out.indexOf(open);
    const end = out.indexOf(close);
    if (start === -1 || end < start) throw new Error(`docs/${file} lacks the markers ${open} … ${close}`);
    out = `${out.slice(0, start + open.length)}\n${make()}\n${out.slice(end)}`;
  }
  return out;
}
