// JSON logs for every process. Secrets are redacted wherever they might be passed by mistake.
import { pino, type Logger } from 'pino';

export function createLogger(component: string, level = process.env.MTRELAY_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { component },
    redact: { paths: ['password', '*.password', 'apiKey', '*.apiKey', 'auth.password', 'key', '*.privateKey'], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
