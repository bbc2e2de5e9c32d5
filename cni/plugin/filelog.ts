/**
 * The CNI plugin's logger: pino's JSON line format ({level, time, pid, hostname, name, msg, …})
 * appended to the configured file, without loading pino — the runtime execs the plugin per pod and
 * pino's import alone costs ~40 ms. Same levels and shape, so the same tools read both.
 * Never logs to stdout (stdout is the CNI result); if the file cannot be written, stderr.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
type LevelName = keyof typeof LEVELS;

export interface CniLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

function serialize(v: unknown): unknown {
  if (v instanceof Error) {
    const e = v as Error & { code?: unknown };
    return { type: e.name, message: e.message, ...(e.code !== undefined ? { code: e.code } : {}), stack: e.stack };
  }
  return v;
}

export function fileLog(opts: { name: string; file: string; level?: string }): CniLog {
  const min = LEVELS[(opts.level ?? 'info') as LevelName] ?? LEVELS.info;
  const host = hostname();
  let ready = false;
  const write = (line: string) => {
    try {
      if (!ready) {
        mkdirSync(dirname(opts.file), { recursive: true });
        ready = true;
      }
      appendFileSync(opts.file, line);
    } catch {
      process.stderr.write(line);
    }
  };
  const at = (level: LevelName) => (obj: object, msg?: string) => {
    if (LEVELS[level] < min) return;
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) fields[k] = serialize(v);
    write(JSON.stringify({ level: LEVELS[level], time: Date.now(), pid: process.pid, hostname: host, name: opts.name, ...fields, ...(msg !== undefined ? { msg } : {}) }) + '\n');
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Drops everything (unit tests). */
export function silentLog(): CniLog {
  const nop = () => undefined;
  return { debug: nop, info: nop, warn: nop, error: nop };
}
