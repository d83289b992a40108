// Reads a folder of YAML (or JSON) manifests, as one would keep them for `kubectl apply -f DIR`.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { compileConfig, type SourcedDocument } from './compiler.ts';
import { ConfigCompileError, type ConfigProblem } from './problems.ts';
import type { CompiledConfig } from './types.ts';

const MANIFEST = /\.(ya?ml|json)$/i;

async function listManifests(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && MANIFEST.test(e.name) && !e.name.startsWith('.'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** Parses every manifest; a file that is not valid YAML fails the whole folder. */
export async function readManifestFolder(dir: string): Promise<SourcedDocument[]> {
  const documents: SourcedDocument[] = [];
  const problems: ConfigProblem[] = [];
  for (const file of await listManifests(dir)) {
    const source = path.relative(dir, file) || file;
    const text = await readFile(file, 'utf8');
    for (const doc of parseAllDocuments(text, { prettyErrors: true })) {
      if (doc.errors.length) {
        problems.push({ source, message: doc.errors[0]!.message.split('\n')[0]! });
        continue;
      }
      documents.push({ source, document: doc.toJS({ maxAliasCount: 100 }) });
    }
  }
  if (problems.length) throw new ConfigCompileError(problems);
  return documents;
}

export async function compileManifestFolder(dir: string): Promise<CompiledConfig> {
  return compileConfig(await readManifestFolder(dir));
}

/** Cheap fingerprint of the folder (names, sizes, modification times) to notice changes. */
export async function folderFingerprint(dir: string): Promise<string> {
  const files = await listManifests(dir);
  const parts = await Promise.all(files.map(async (f) => {
    const s = await stat(f);
    return `${f}:${s.size}:${s.mtimeMs}`;
  }));
  return parts.join('|');
}
