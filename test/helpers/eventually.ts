// Waiting for something the system does on its own time: polls until the probe gives a
// truthy value; a probe that throws counts as "not yet", and its last error is in the timeout's message.

/** Polls `probe` (sync or async) every `intervalMs` until it gives a truthy value, for at most `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
