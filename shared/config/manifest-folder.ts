// Reads a folder of YAML (or JSON) manifests, as one would keep them for `kubectl apply -f DIR`.
// A file that cannot be read or parsed is a problem of that file only: its resources stay as
// they last were (`lastGood`), except its Secrets. A credential is never used from a file that
// cannot be read now, so an ApiKey whose Secret is in it stops authenticating (fail closed) and
// a SendingDomain whose DKIM key is in it stops sending until the file is fixed.
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

/** Each file's documents as last read whole, by its path in the folder. */
export type LastGoodFiles = Map<string, SourcedDocument[]>;

export interface FolderRead {
  documents: SourcedDocument[];
  /** Files that could not be read or parsed. */
  problems: ConfigProblem[];
}

const isSecret = (d: SourcedDocument) => (d.document as { kind?: unknown } | null)?.kind === 'Secret';

/** A manifest file's documents, or why they cannot be used. */
export function parseManifest(text: string, source: string): SourcedDocument[] | ConfigProblem {
  const documents: SourcedDocument[] = [];
  for (const doc of parseAllDocuments(text, { prettyErrors: true })) {
    if (doc.errors.length) return { source, message: doc.errors[0]!.message.split('\n')[0]! };
    try {
      documents.push({ source, document: doc.toJS({ maxAliasCount: 100 }) });
    } catch (error) {
      // Found by the fuzzer: an alias to an anchor that does not exist ("*a") parses without
      // errors and throws only when converted.
      return { source, message: (error as Error).message };
    }
  }
  return documents;
}

/** The file's documents, or why it cannot be used now. */
async function readManifest(file: string, source: string): Promise<SourcedDocument[] | ConfigProblem | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // removed since the listing
    return { source, message: `cannot be read: ${(error as Error).message}` };
  }
  return parseManifest(text, source);
}

/**
 * Reads every manifest. `lastGood` is updated with the files read whole, forgets files that are
 * gone, and supplies the last documents (Secrets left out) of files that are broken now.
 */
export async function readManifestFolder(dir: string, lastGood: LastGoodFiles = new Map()): Promise<FolderRead> {
  const read: FolderRead = { documents: [], problems: [] };
  const present = new Set<string>();
  for (const file of await listManifests(dir)) {
    const source = path.relative(dir, file) || file;
    const result = await readManifest(file, source);
    if (!result) continue;
    present.add(source);
    if (Array.isArray(result)) {
      lastGood.set(source, result);
      read.documents.push(...result);
    } else {
      read.problems.push(result);
      read.documents.push(...(lastGood.get(source) ?? []).filter((d) => !isSecret(d)));
    }
  }
  for (const source of lastGood.keys()) if (!present.has(source)) lastGood.delete(source);
  return read;
}

/** Compiles the folder, or throws ConfigCompileError listing every problem (a first load has nothing to fall back on). */
export async function compileManifestFolder(dir: string): Promise<CompiledConfig> {
  const { documents, problems } = await readManifestFolder(dir);
  if (problems.length) throw new ConfigCompileError(problems);
  return compileConfig(documents);
}

/** Cheap fingerprint of the folder (names, sizes, modification and change times: a chmod counts) to notice changes. */
export async function folderFingerprint(dir: string): Promise<string> {
  const files = await listManifests(dir);
  const parts = await Promise.all(files.map(async (f) => {
    const s = await stat(f);
    return `${f}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  }));
  return parts.join('|');
}
