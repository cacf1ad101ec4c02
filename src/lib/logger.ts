import { type Logger, pino } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout (one line per event), level from LOG_LEVEL. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'streamgate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.password'],
      censor: '[redacted]',
    },
  });
}
