/**
 * A pino-compatible JSON line logger without pino: the same line shape ({level, time, pid, hostname,
 * name, …bindings, …fields, msg}), numeric levels, child loggers and secret redaction as
 * lib/log.ts's pino logger, written synchronously to a file descriptor. Loading pino and its
 * dependencies costs a Node process ≈ 30–50 ms of CPU (bench/results/startup.md), which matters for
 * tabby-node when a hundred agents start together; lib/log.ts `createLineLogger` returns one of these.
 *
 * Differences from pino that do not change a line: no transports, no custom serializers/levels, and
 * an Error under any key (not only `err`) is written as {type, message, stack, …} instead of `{}`.
 */
import { writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { format } from 'node:util';

export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
export type LevelName = keyof typeof LEVELS;
const SILENT = Infinity;

/** Keys whose values are replaced by `[redacted]`: at the top level, one level down, and `password` two levels down (lib/log.ts REDACT). */
const REDACT_TOP = new Set(['password', 'token', 'authorization', 'md5']);
const REDACT_NESTED2 = new Set(['password']);
const CENSOR = '[redacted]';

export interface LineSink {
  write(line: string): void;
}

type LogFn = {
  (obj: unknown, msg?: string, ...args: unknown[]): void;
};

function levelValue(level: string): number {
  if (level === 'silent') return SILENT;
  const v = (LEVELS as Record<string, number>)[level];
  if (v === undefined) throw new Error(`unknown level ${level}`); // as pino
  return v;
}

function serializeError(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: e.constructor?.name ?? e.name, message: e.message, stack: e.stack };
  for (const [k, v] of Object.entries(e)) if (!(k in out)) out[k] = v instanceof Error ? serializeError(v) : v;
  if (e.cause !== undefined && !('cause' in out)) out.cause = e.cause instanceof Error ? serializeError(e.cause) : e.cause;
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Error);
}

/** A copy of `v` with the redacted keys censored `depth` levels below (never mutates the caller's object). */
function redactBelow(v: unknown, depth: number): unknown {
  if (!isPlainObject(v)) return v;
  let copy: Record<string, unknown> | undefined;
  for (const k of Object.keys(v)) {
    const keys = depth === 1 ? REDACT_TOP : REDACT_NESTED2;
    let nv: unknown = v[k];
    if (keys.has(k)) nv = CENSOR;
    else if (depth === 1) nv = redactBelow(nv, 2);
    else continue;
    if (nv !== v[k]) (copy ??= { ...v })[k] = nv;
  }
  return copy ?? v;
}

/** JSON with what pino's safe-stable-stringify also survives: cycles → "[Circular]", BigInt → number text. */
function stringify(o: unknown): string {
  try {
    return JSON.stringify(o);
  } catch {
    const seen = new WeakSet<object>();
    return JSON.stringify(o, (_k, v: unknown) => {
      if (typeof v === 'bigint') return Number(v);
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[Circular]';
        seen.add(v);
      }
      return v;
    });
  }
}

/** Adds fields of `obj` (pino's merging object) into `into`: Errors serialized, secrets censored. */
function merge(into: Record<string, unknown>, obj: Record<string, unknown>): void {
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    into[k] = REDACT_TOP.has(k) ? CENSOR : v instanceof Error ? serializeError(v) : redactBelow(v, 1);
  }
}

export interface LineLoggerOptions {
  name?: string;
  level?: string;
  /** Where lines go: a sink, or a file descriptor written with writeSync (default 2, stderr). */
  destination?: LineSink | number;
}

export class LineLogger {
  private min: number;
  private readonly prefix: string;
  readonly trace: LogFn;
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
  readonly fatal: LogFn;

  constructor(
    opts: LineLoggerOptions,
    private readonly sink: LineSink = typeof opts.destination === 'object' ? opts.destination : fdSink(opts.destination ?? 2),
    private readonly bound: Record<string, unknown> = {},
    prefix?: string,
  ) {
    this.min = levelValue(opts.level ?? 'info');
    this.prefix = prefix ?? `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())}${opts.name !== undefined ? `,"name":${JSON.stringify(opts.name)}` : ''}`;
    this.trace = this.at(LEVELS.trace);
    this.debug = this.at(LEVELS.debug);
    this.info = this.at(LEVELS.info);
    this.warn = this.at(LEVELS.warn);
    this.error = this.at(LEVELS.error);
    this.fatal = this.at(LEVELS.fatal);
  }

  get level(): string {
    if (this.min === SILENT) return 'silent';
    return (Object.keys(LEVELS) as LevelName[]).find((k) => LEVELS[k] === this.min) ?? 'info';
  }

  set level(l: string) {
    this.min = levelValue(l);
  }

  isLevelEnabled(l: string): boolean {
    return levelValue(l) >= this.min;
  }

  child(bindings: Record<string, unknown>): LineLogger {
    const b: Record<string, unknown> = {};
    merge(b, bindings);
    return new LineLogger({ level: this.level }, this.sink, { ...this.bound, ...b }, this.prefix);
  }

  bindings(): Record<string, unknown> {
    return { ...this.bound };
  }

  flush(): void {
    // every line is written synchronously
  }

  private at(value: number): LogFn {
    return (obj: unknown, msg?: string, ...args: unknown[]): void => {
      if (value < this.min) return;
      const fields: Record<string, unknown> = { ...this.bound };
      let text: string | undefined;
      if (typeof obj === 'string') {
        text = msg === undefined ? obj : format(obj, msg, ...args);
      } else {
        if (obj instanceof Error) {
          fields.err = serializeError(obj);
          text = msg ?? obj.message;
        } else if (typeof obj === 'object' && obj !== null) {
          merge(fields, obj as Record<string, unknown>);
          text = msg;
        } else {
          text = msg;
        }
        if (text !== undefined && args.length) text = format(text, ...args);
      }
      if (text !== undefined) fields.msg = text;
      const rest = stringify(fields);
      this.sink.write(`{"level":${value},"time":${Date.now()}${this.prefix}${rest.length > 2 ? `,${rest.slice(1)}` : '}'}\n`);
    };
  }
}

/** Synchronous writes to a descriptor, retrying a full non-blocking pipe (EAGAIN) like pino's sonic-boom. */
export function fdSink(fd: number): LineSink {
  return {
    write(line: string): void {
      let buf = Buffer.from(line);
      for (let tries = 0; buf.length > 0; ) {
        try {
          const n = writeSync(fd, buf);
          buf = buf.subarray(n);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++tries > 1000) throw err;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        }
      }
    },
  };
}
