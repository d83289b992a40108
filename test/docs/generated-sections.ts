// Sections of the docs made from the code: each lives between `<!-- generated:NAME -->` and
// `<!-- /generated:NAME -->` in a docs file. `npm run docs` rewrites them; the docs test fails
// when a file differs from what the code would write, so the two cannot drift apart.
import { REPLIES, type ReplyDefinition } from '../../shared/smtp-replies.ts';

function replyTable(by: ReplyDefinition['by']): string {
  const rows = Object.entries(REPLIES).filter(([, r]) => r.by === by).map(([name, r]) =>
    `| \`${name}\` | \`${r.code} ${r.enhanced} ${r.text}\` | ${r.when} | ${r.action} |`);
  return ['| name | reply | when | what to do |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** Section name → its generated Markdown, per docs file. */
export const GENERATED: Record<string, Record<string, () => string>> = {
  'smtp-replies.md': {
    'relay-replies': () => replyTable('relay'),
    'library-replies': () => replyTable('smtp-server'),
    'deliverer-replies': () => replyTable('deliverer'),
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
