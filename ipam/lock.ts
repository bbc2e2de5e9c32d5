/**
 * Per-node IPAM lock. Concurrent CNI invocations on one node would otherwise race for the same
 * block and burn CAS retries (Calico holds a host-wide flock on /var/run/calico/ipam.lock for the
 * whole ADD/DEL). Two layers:
 * - an in-process mutex per lock path (several allocations in one process queue up), and
 * - an advisory `flock(2)` on a file under the run directory (separate processes queue up). The
 *   kernel drops it when the process dies, so a killed plugin never leaves the node locked.
 * Across nodes there is no lock: only compare-and-swap.
 */
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { libcErrno, libcFunc } from '../lib/libc.js';
import { IpamError } from './errors.js';

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;

type FlockFn = (fd: number, op: number) => number;
let flockFn: FlockFn | undefined;
let errnoFn: (() => number) | undefined;

async function loadFlock(): Promise<FlockFn> {
  if (!flockFn) {
    flockFn = libcFunc<FlockFn>('int flock(int, int)');
    errnoFn = libcErrno;
  }
  return flockFn;
}

/** Promise-chain mutex: run() calls execute one at a time, in call order. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

const mutexes = new Map<string, Mutex>();

export interface HostLockOptions {
  /** Directory for lock files; undefined = in-process mutex only. */
  runDir?: string;
  /** Give up after this long (Calico's allocation timeout starts after the lock; ours bounds the wait). */
  timeoutMs?: number;
}

/** Name of the lock for a host. One node normally has one hostname; tests simulate several. */
export function lockPath(runDir: string, host: string): string {
  return join(runDir, `ipam-${host.replace(/[^A-Za-z0-9._-]/g, '_')}.lock`);
}

/** Run `fn` holding the node's IPAM lock. */
export async function withHostLock<T>(host: string, opts: HostLockOptions, fn: () => Promise<T>): Promise<T> {
  const key = opts.runDir ? lockPath(opts.runDir, host) : `mem:${host}`;
  let m = mutexes.get(key);
  if (!m) mutexes.set(key, (m = new Mutex()));
  return m.run(async () => {
    if (!opts.runDir) return fn();
    const fd = await acquireFileLock(key, opts.timeoutMs ?? 90_000);
    try {
      return await fn();
    } finally {
      flockFn!(fd, LOCK_UN);
      closeSync(fd);
    }
  });
}

async function acquireFileLock(path: string, timeoutMs: number): Promise<number> {
  const flock = await loadFlock();
  mkdirSync(join(path, '..'), { recursive: true });
  const fd = openSync(path, 'a', 0o600);
  const deadline = Date.now() + timeoutMs;
  let wait = 1;
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) === 0) return fd;
    const errno = errnoFn!();
    if (errno !== EWOULDBLOCK) {
      closeSync(fd);
      throw new IpamError('LockTimeout', `flock(${path}) failed with errno ${errno}`, { hint: 'check the run directory is writable' });
    }
    if (Date.now() >= deadline) {
      closeSync(fd);
      throw new IpamError('LockTimeout', `timed out after ${timeoutMs} ms waiting for the IPAM lock ${path}`, {
        hint: 'another IPAM operation on this node is stuck; check for hung tabby-ipam processes',
      });
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 20);
  }
}
