// Every role drains on SIGTERM (and Ctrl-C): stop accepting work, finish what is in
// flight, flush, then exit 0 — or 1 when the drain itself failed.
import type { Logger } from 'pino';

export function exitOnSignals(shutdown: () => Promise<void>, logger: Logger): void {
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    shutdown().then(() => process.exit(0), (error: Error) => {
      logger.error({ err: { message: error.message } }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
