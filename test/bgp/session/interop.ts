/**
 * Helpers for interop tests: a throw-away network namespace, a daemon in it, and our
 * fixtures/peer-runner.ts in it printing JSON events. Everything is torn down by t.after.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

type After = { after(fn: () => unknown): void };

/**
 * A test namespace name. TABBY_TEST_NETNS_PREFIX (e.g. "tk1-") goes in front, so two checkouts can
 * run these tests at once without deleting each other's namespaces.
 */
export function nsName(name: string): string {
  return `${process.env.TABBY_TEST_NETNS_PREFIX ?? ''}${name}`;
}

/** A netns with lo up and 127.0.0.2 as a second loopback address; a temp dir. */
export function netnsWithTemp(t: After, ns: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `${ns}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  try {
    sh('ip', ['netns', 'del', ns]);
  } catch {
    // not there: fine
  }
  sh('ip', ['netns', 'add', ns]);
  t.after(() => {
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      // already gone
    }
  });
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', '127.0.0.2/8', 'dev', 'lo']);
  return dir;
}

/**
 * Start a daemon inside the namespace (`ip netns exec` execs it, so the pid is the daemon's).
 * When the test ends it gets SIGTERM (so it can reap its own helpers), then SIGKILL after 3 s.
 */
export function daemon(t: After, ns: string, argv: string[], env?: NodeJS.ProcessEnv): { proc: ChildProcess; log: () => string } {
  const proc = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  let log = '';
  proc.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  t.after(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  });
  return { proc, log: () => log };
}

export interface Runner {
  proc: ChildProcess;
  events: Array<Record<string, unknown>>;
  waitFor(pred: (e: Record<string, unknown>) => boolean, what: string, context?: () => string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Run our Session (fixtures/peer-runner.ts) in the namespace with this config. */
export function runner(t: After, ns: string, cfg: unknown): Runner {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', path.join(here, 'fixtures/peer-runner.ts'), JSON.stringify(cfg)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  t.after(() => {
    proc.kill('SIGKILL');
  });
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    try {
      events.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      events.push({ ev: 'garbage', line: l });
    }
    for (const w of waiters.splice(0)) w();
  });
  return {
    proc,
    events,
    async waitFor(pred, what, context) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline || proc.exitCode !== null) {
          assert.fail(`${what} did not happen; events: ${JSON.stringify(events)}\nrunner: ${err}\n${context?.() ?? ''}`);
        }
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 500);
        });
      }
    },
    async stop() {
      proc.kill('SIGTERM');
      if (proc.exitCode === null) await new Promise((r) => proc.once('exit', r));
    },
  };
}

/** Poll `fn` until `ok(result)` or ~5 s pass; returns the last result. */
export async function poll(fn: () => string, ok: (s: string) => boolean): Promise<string> {
  let last = '';
  for (let i = 0; i < 20; i++) {
    try {
      last = fn();
    } catch (e) {
      last = String(e);
    }
    if (ok(last)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}
