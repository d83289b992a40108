// A message's leaf parts as Python's email package reads them: an independent check that a
// rewritten message is still valid MIME and says what it should.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('mime_parts.py', import.meta.url));

export interface MimePart {
  type: string;
  charset: string | null;
  cte: string;
  disposition: string | null;
  defects: string[];
  text?: string;
  bytes?: number;
}

export function mimeParts(message: Buffer): { defects: string[]; parts: MimePart[] } {
  const run = spawnSync('/usr/bin/python3', [script], { input: message, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`mime_parts.py exited ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as { defects: string[]; parts: MimePart[] };
}
