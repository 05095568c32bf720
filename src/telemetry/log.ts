// Structured JSON logs (pino). One root logger; components take a child with their own `component` field.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.ZV_LOG_LEVEL ?? 'info';
  return opts.destination ? pino({ level }, opts.destination) : pino({ level });
}

/** A logger that drops everything (tests, library use without logging). */
export const silentLogger: Logger = pino({ level: 'silent' });
