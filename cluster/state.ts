/** State file I/O and the progress printer shared by up, down and status. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterState } from './plan.js';
import { parseState, serializeState } from './plan.js';

export function stateFileOf(stateDir: string): string {
  return join(stateDir, 'state.json');
}

export function readState(stateDir: string): ClusterState | undefined {
  const file = stateFileOf(stateDir);
  if (!existsSync(file)) return undefined;
  return parseState(readFileSync(file, 'utf8'), file);
}

/** Atomic write (temp + rename), so a crash never leaves half a state file. */
export function writeState(stateDir: string, s: ClusterState): void {
  mkdirSync(stateDir, { recursive: true });
  const file = stateFileOf(stateDir);
  writeFileSync(`${file}.tmp`, serializeState(s));
  renameSync(`${file}.tmp`, file);
}

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** Progress lines: `[ 3/11] etcd ........ ok  412 ms` */
export class Progress {
  private n = 0;
  constructor(
    private readonly io: Output,
    private readonly total: number,
  ) {}

  async step<T>(name: string, fn: () => Promise<T>, note?: (v: T) => string): Promise<T> {
    this.n++;
    const start = Date.now();
    const label = `[${String(this.n).padStart(2)}/${this.total}] ${name}`;
    try {
      const v = await fn();
      const extra = note ? note(v) : '';
      this.io.out(`${label.padEnd(44, ' ')} ok ${fmtMs(Date.now() - start).padStart(8)}${extra ? `  ${extra}` : ''}`);
      return v;
    } catch (e) {
      this.io.out(`${label.padEnd(44, ' ')} FAILED after ${fmtMs(Date.now() - start)}`);
      throw e;
    }
  }

  skip(name: string, why: string): void {
    this.n++;
    this.io.out(`${`[${String(this.n).padStart(2)}/${this.total}] ${name}`.padEnd(44, ' ')} skipped: ${why}`);
  }
}

export function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The checkout's root (where package.json and bin/ live), from this module's location. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'tabbyctl'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}
