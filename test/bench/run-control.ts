// What a benchmark run needs around its measurements: progress lines on stderr, and a stack of
// clean-up steps run in reverse order on success, failure, Ctrl-C or the time limit, so no
// broker, relay or Postfix outlives the run. Also the frame every benchmark command shares:
// its flags read (the usage on a mistake), and its summary measured, written and printed.
import path from 'node:path';
import { repoRoot } from '../kafka/broker.ts';

export class RunControl {
  readonly #name: string;
  readonly #began = Date.now();
  readonly #steps: (() => unknown)[] = [];
  #aborting = false;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(name: string) {
    this.#name = name;
  }

  progress(message: string): void {
    process.stderr.write(`[bench ${((Date.now() - this.#began) / 1000).toFixed(0).padStart(3)} s] ${message}\n`);
  }

  /** Adds a clean-up step; the last one added runs first. */
  defer(step: () => unknown): void {
    this.#steps.push(step);
  }

  /** Runs every pending step; a failing step is reported and the others still run. */
  async cleanUp(): Promise<void> {
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      try {
        await step();
      } catch (error) {
        process.stderr.write(`cleanup: ${(error as Error).message}\n`);
      }
    }
  }

  async abort(reason: string, code: number): Promise<never> {
    if (!this.#aborting) {
      this.#aborting = true;
      process.stderr.write(`${this.#name} stopped: ${reason}\n`);
      await this.cleanUp();
    }
    process.exit(code);
  }

  /** Ctrl-C, SIGTERM and running longer than `limitMs` abort the run (after cleaning up). */
  guard(limitMs: number): void {
    process.on('SIGINT', () => void this.abort('interrupted', 130));
    process.on('SIGTERM', () => void this.abort('terminated', 143));
    this.#watchdog = setTimeout(() => void this.abort(`took longer than ${limitMs / 60_000} minutes`, 1), limitMs);
  }

  /** The run finished: no more time limit. */
  disarm(): void {
    clearTimeout(this.#watchdog);
  }

  /** The command's flags; exits 2 with the usage when they are wrong, 0 after --help (`parse` printed it). */
  flags<F>(parse: (argv: string[]) => F | undefined, usage: string): F {
    let flags: F | undefined;
    try {
      flags = parse(process.argv.slice(2));
    } catch (error) {
      process.stderr.write(`${this.#name}: ${(error as Error).message}\n${usage}\n`);
      process.exit(2);
    }
    if (flags === undefined) process.exit(0);
    return flags;
  }

  /**
   * Measures within `limitMs`, cleans up, then writes the report (`write` returns its Markdown
   * and the file it went to) and prints it; any failure aborts the run after cleaning up.
   */
  async measure<S>(limitMs: number, bench: () => Promise<S>, write: (summary: S) => { markdown: string; file: string }): Promise<void> {
    this.guard(limitMs);
    try {
      const summary = await bench();
      await this.cleanUp();
      const { markdown, file } = write(summary);
      process.stdout.write(`\n${markdown}\nWritten to ${path.relative(repoRoot, file)}\n`);
      this.progress('done');
      this.disarm();
    } catch (error) {
      await this.abort((error as Error).stack ?? String(error), 1);
    }
  }
}
