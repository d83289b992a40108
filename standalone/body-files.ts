// Large message bodies as files beside the queue database, as Postfix keeps its queue files:
// written and flushed to disk before the row that names them is committed, read once per
// attempt, removed after the commit that frees them. Stored in SQLite, a body was copied three
// times on the way in (the bound value, the row, its pages) and twice on the way out, and
// written to disk twice (the WAL, then the database); a file is one write and one read.
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import path from 'node:path';

/** The names `write` gives. */
const BODY_FILE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.eml$/;

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class BodyFiles {
  readonly #dir: string;
  readonly #dirFd: number;

  constructor(dir: string) {
    this.#dir = dir;
    // A folder made now must itself survive a crash, or committed rows could name files in a folder that is gone.
    if (mkdirSync(dir, { recursive: true, mode: 0o700 })) syncDirectory(path.dirname(dir));
    this.#dirFd = openSync(dir, 'r');
  }

  /** Writes a body to a new file, on disk when this resolves; returns its name. */
  async write(body: Buffer): Promise<string> {
    const name = `${randomUUID()}.eml`;
    const file = await open(path.join(this.#dir, name), 'wx', 0o600);
    try {
      await file.writeFile(body);
      await file.datasync();
    } catch (error) {
      await file.close().catch(() => undefined);
      await unlink(path.join(this.#dir, name)).catch(() => undefined);
      throw error;
    }
    await file.close();
    return name;
  }

  /** Makes the names of the files written so far durable (the directory's own entries). */
  syncNames(): void {
    fsyncSync(this.#dirFd);
  }

  read(name: string): Buffer {
    return readFileSync(path.join(this.#dir, name));
  }

  /** Removes files no committed row names any more; a crash before this leaves orphans, removed at the next start. */
  remove(names: Iterable<string>): void {
    for (const name of names) void unlink(path.join(this.#dir, name)).catch(() => undefined);
  }

  /** Removes the body files `referenced` does not name (left by a crash between a write and its commit); returns how many. Other entries are left alone. */
  removeOrphans(referenced: Set<string>): number {
    let removed = 0;
    for (const entry of readdirSync(this.#dir, { withFileTypes: true })) {
      if (!entry.isFile() || !BODY_FILE.test(entry.name) || referenced.has(entry.name)) continue;
      rmSync(path.join(this.#dir, entry.name), { force: true });
      removed++;
    }
    return removed;
  }

  close(): void {
    closeSync(this.#dirFd);
  }
}
