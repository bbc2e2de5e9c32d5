/**
 * pino logger factory. Every component logs JSON through this so levels and redaction are the same
 * everywhere. Secrets (BGP passwords, tokens) are redacted by path; still, never pass them in messages.
 */
import { createRequire } from 'node:module';
import type { Logger, DestinationStream } from 'pino';
import type * as PinoLib from 'pino';
import { LineLogger, type LineSink } from './linelog.js';

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

/** pino, loaded on first use: its import alone costs a Node process ≈ 30–50 ms (lib/linelog.ts). */
function pinoLib(): typeof PinoLib.pino {
  return (createRequire(import.meta.url)('pino') as typeof PinoLib).pino;
}

export function createLogger(opts: LogOptions): Logger {
  const pino = pinoLib();
  const level = opts.level ?? process.env.LOG_LEVEL ?? 'info';
  const dest = opts.destination ?? (opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: true }) : pino.destination(2));
  return pino({ name: opts.name, level, redact: { paths: REDACT, censor: '[redacted]' } }, dest);
}

/**
 * The same lines as `createLogger` (shape, levels, redaction, child loggers) from lib/linelog.ts
 * instead of pino — for processes whose start cost matters (tabby-node). Writes synchronously to
 * stderr unless `destination` is given.
 */
export function createLineLogger(opts: { name: string; level?: string; destination?: LineSink }): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? 'info';
  return new LineLogger({ name: opts.name, level, ...(opts.destination ? { destination: opts.destination } : {}) }) as unknown as Logger;
}

/** A logger that drops everything, for unit tests (and as the default where none is injected). */
export function silentLogger(): Logger {
  return new LineLogger({ level: 'silent' }) as unknown as Logger;
}
