// How a compiled config travels in Secrets. The JSON document is gzipped and cut into
// pieces under Kubernetes' 1 MiB object limit: the first piece and an index live in the
// Secret NAME, further pieces in NAME-1, NAME-2, … The index names every piece with its
// SHA-256, so a reader that catches a write half-done sees a mismatch and waits for the next
// index instead of loading a mix. The writer writes the pieces first and the index last.
import { gunzipSync, gzipSync } from 'node:zlib';
import { MtrelayError } from '../errors.ts';
import { describeFirstError } from '../validation.ts';
import { validateCompiledConfig } from './compiled-config.ts';
import { sha256Hex } from './hash.ts';
import type { CompiledConfig } from './types.ts';

export const CONFIG_INDEX_KEY = 'index.json';
export const CONFIG_PIECE_KEY = 'config.json.gz';
/** Label on every config Secret, valued with the name of the set it belongs to. */
export const CONFIG_SET_LABEL = 'mtrelay.dev/config';
/** Room left under the 1 MiB limit for the index, metadata and encoding. */
export const DEFAULT_PIECE_BYTES = 900 * 1024;
/** A fixed bound, so RBAC can name every Secret a reader may get (NAME, NAME-1 … NAME-31). */
export const MAX_CONFIG_PIECES = 32;

export interface ConfigIndex {
  revision: string;
  encoding: 'gzip';
  /** Size of the gzipped document. */
  bytes: number;
  pieces: { secret: string; sha256: string }[];
}

export interface ConfigSecretData {
  name: string;
  data: Record<string, string>;
}

export function pieceSecretName(setName: string, index: number): string {
  return index === 0 ? setName : `${setName}-${index}`;
}

/** The Secrets (name and base64 data) that carry `document`, index Secret first. */
export function encodeConfigSecrets(setName: string, document: CompiledConfig, pieceBytes = DEFAULT_PIECE_BYTES): { index: ConfigIndex; secrets: ConfigSecretData[] } {
  const gz = gzipSync(JSON.stringify(document)); // level 6: level 9 costs far more CPU for a few per cent
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < gz.length || chunks.length === 0; offset += pieceBytes) chunks.push(gz.subarray(offset, offset + pieceBytes));
  if (chunks.length > MAX_CONFIG_PIECES) {
    throw new Error(`the compiled config is ${gz.length} bytes gzipped; more than ${MAX_CONFIG_PIECES} Secrets of ${pieceBytes} bytes would be needed`);
  }
  const index: ConfigIndex = {
    revision: document.revision,
    encoding: 'gzip',
    bytes: gz.length,
    pieces: chunks.map((chunk, i) => ({ secret: pieceSecretName(setName, i), sha256: sha256Hex(chunk) })),
  };
  const secrets = chunks.map((chunk, i) => ({
    name: pieceSecretName(setName, i),
    data: {
      [CONFIG_PIECE_KEY]: chunk.toString('base64'),
      ...(i === 0 ? { [CONFIG_INDEX_KEY]: Buffer.from(JSON.stringify(index)).toString('base64') } : {}),
    },
  }));
  return { index, secrets };
}

export function readConfigIndex(data: Record<string, string> | undefined): ConfigIndex | undefined {
  const encoded = data?.[CONFIG_INDEX_KEY];
  if (!encoded) return undefined;
  return JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as ConfigIndex;
}

/** Thrown when the pieces do not match the index yet (a write in progress); try again shortly. */
export class ConfigPiecesOutOfStep extends MtrelayError {
  constructor(message: string) {
    super('MTR_ERR_CONFIG_PIECES', message);
  }
}

/** Joins the pieces named by the index back into the document, checking every hash and the schema. */
export function decodeConfigSecrets(index: ConfigIndex, pieceData: (secretName: string) => Record<string, string> | undefined): CompiledConfig {
  const chunks = index.pieces.map(({ secret, sha256 }) => {
    const encoded = pieceData(secret)?.[CONFIG_PIECE_KEY];
    if (encoded === undefined) throw new ConfigPiecesOutOfStep(`config piece ${secret} is missing`);
    const chunk = Buffer.from(encoded, 'base64');
    if (sha256Hex(chunk) !== sha256) throw new ConfigPiecesOutOfStep(`config piece ${secret} does not match the index (revision ${index.revision})`);
    return chunk;
  });
  const document = JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8')) as unknown;
  if (!validateCompiledConfig(document)) throw new Error(`config revision ${index.revision}: ${describeFirstError(validateCompiledConfig.errors)}`);
  return document;
}
