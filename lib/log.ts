/**
 * pino logger factory. Every component logs JSON through this so levels and redaction are the same
 * everywhere. Secrets (BGP passwords, tokens) are redacted by path; still, never pass them in messages.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

const REDACT = [
  'password',
  '*.password',
  '*.*.password',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'md5',
  '*.md5',
];

export interface LogOptions {
  /** Component name, e.g. "felix", "bgp", "cni". */
  name: string;
  /** LOG_LEVEL env wins when unset; default "info". */
  level?: string;
  /** Write to this file instead of stderr (the CNI plugin must never log to stdout). */
  file?: string;
  destination?: DestinationStream;
}

export function createLogger(opts: LogOptions): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? 'info';
  const dest = opts.destination ?? (opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: true }) : pino.destination(2));
  return pino({ name: opts.name, level, redact: { paths: REDACT, censor: '[redacted]' } }, dest);
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
