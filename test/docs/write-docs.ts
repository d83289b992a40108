// `npm run docs`: rewrites the generated sections of the docs from the code.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../kafka/broker.ts';
import { GENERATED, regenerate } from './generated-sections.ts';

for (const file of Object.keys(GENERATED)) {
  const full = path.join(repoRoot, 'docs', file);
  const before = readFileSync(full, 'utf8');
  const after = regenerate(file, before);
  if (after !== before) writeFileSync(full, after);
  process.stdout.write(`docs/${file}: ${after === before ? 'up to date' : 'rewritten'}\n`);
}
