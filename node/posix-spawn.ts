/**
 * Exec a CNI delegate (host-local, …) from tabby-node's CNI server with posix_spawn(3): glibc runs it
 * as clone(CLONE_VM|CLONE_VFORK), so nothing of this large process is copied, where
 * child_process.spawn (libuv) forks it: ≈ 1–1.5 ms of CPU per exec, two per ADD+DEL cycle.
 * Same contract as cni/plugin/exec.ts runPlugin: the config on stdin, stdout collected, stderr
 * inherited, the exit code (128 + signal when killed). The child starts with an empty signal mask
 * and default dispositions (Node ignores SIGPIPE; a plugin must not inherit that), as libuv does.
 * stdin/stdout are pipes driven by the event loop (net.Socket); the child is reaped with
 * waitpid(WNOHANG) once its stdout closes (libuv's SIGCHLD handler only reaps its own children).
 */
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CniCode, CniError } from '../cni/protocol/errors.js';
import type { ExecResult, PluginRunner } from '../cni/plugin/exec.js';
import { libcErrno, libcFunc } from '../lib/libc.js';

const O_CLOEXEC = 0o2000000;
const WNOHANG = 1;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const EINTR = 4;
// glibc x86_64/arm64: posix_spawnattr_t 336 bytes, posix_spawn_file_actions_t 80, sigset_t 128; room to spare.
const ATTR_BYTES = 512;
const FA_BYTES = 256;
const SIGSET_BYTES = 256;

interface Spawn {
  pipe2(fds: Buffer, flags: number): number;
  faInit(fa: Buffer): number;
  faDup2(fa: Buffer, fd: number, newfd: number): number;
  faDestroy(fa: Buffer): number;
  attrInit(a: Buffer): number;
  attrSetFlags(a: Buffer, flags: number): number;
  attrSetSigmask(a: Buffer, set: Buffer): number;
  attrSetSigdefault(a: Buffer, set: Buffer): number;
  attrDestroy(a: Buffer): number;
  sigemptyset(set: Buffer): number;
  spawn(pid: Buffer, path: string, fa: Buffer, attr: Buffer, argv: Array<string | null>, envp: Array<string | null>): number;
  waitpid(pid: number, status: Buffer, options: number): number;
}

let fns: Spawn | undefined;
function lc(): Spawn {
  fns ??= {
    pipe2: libcFunc('int pipe2(void *, int)'),
    faInit: libcFunc('int posix_spawn_file_actions_init(void *)'),
    faDup2: libcFunc('int posix_spawn_file_actions_adddup2(void *, int, int)'),
    faDestroy: libcFunc('int posix_spawn_file_actions_destroy(void *)'),
    attrInit: libcFunc('int posix_spawnattr_init(void *)'),
    attrSetFlags: libcFunc('int posix_spawnattr_setflags(void *, short)'),
    attrSetSigmask: libcFunc('int posix_spawnattr_setsigmask(void *, void *)'),
    attrSetSigdefault: libcFunc('int posix_spawnattr_setsigdefault(void *, void *)'),
    attrDestroy: libcFunc('int posix_spawnattr_destroy(void *)'),
    sigemptyset: libcFunc('int sigemptyset(void *)'),
    spawn: libcFunc('int posix_spawn(void *, const char *, void *, void *, const char **, const char **)'),
    waitpid: libcFunc('int waitpid(int, void *, int)'),
  };
  return fns;
}

function pipe(): [number, number] {
  const b = Buffer.alloc(8);
  if (lc().pipe2(b, O_CLOEXEC) !== 0) throw new CniError(CniCode.IoFailure, `pipe2 failed (errno ${libcErrno()})`);
  return [b.readInt32LE(0), b.readInt32LE(4)];
}

/** Start `path` with stdin/stdout on pipes; returns the pid and our ends of the pipes. */
function start(path: string, env: NodeJS.ProcessEnv): { pid: number; stdinFd: number; stdoutFd: number } {
  const c = lc();
  const [inR, inW] = pipe();
  let outR: number | undefined;
  let outW: number | undefined;
  const fa = Buffer.alloc(FA_BYTES);
  const attr = Buffer.alloc(ATTR_BYTES);
  try {
    [outR, outW] = pipe();
    c.faInit(fa);
    c.attrInit(attr);
    try {
      // dup2 clears O_CLOEXEC on 0 and 1; every other fd of ours is close-on-exec.
      c.faDup2(fa, inR, 0);
      c.faDup2(fa, outW, 1);
      const empty = Buffer.alloc(SIGSET_BYTES);
      // Every signal 1..64 back to SIG_DFL, glibc's internal 32/33 too: sigfillset() leaves them out
      // and glibc's spawn then sets them to SIG_IGN in the child, which the exec'd plugin would keep.
      const all = Buffer.alloc(SIGSET_BYTES);
      all.fill(0xff, 0, 8);
      c.sigemptyset(empty);
      c.attrSetSigmask(attr, empty);
      c.attrSetSigdefault(attr, all);
      c.attrSetFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
      const pidBuf = Buffer.alloc(4);
      const envp = Object.entries(env)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${v}`);
      const rc = c.spawn(pidBuf, path, fa, attr, [path, null], [...envp, null]);
      if (rc !== 0) throw new CniError(CniCode.IoFailure, `cannot run ${path}: posix_spawn errno ${rc}`);
      return { pid: pidBuf.readInt32LE(0), stdinFd: inW, stdoutFd: outR };
    } finally {
      c.faDestroy(fa);
      c.attrDestroy(attr);
    }
  } catch (err) {
    closeSync(inW);
    if (outR !== undefined) closeSync(outR);
    throw err;
  } finally {
    closeSync(inR);
    if (outW !== undefined) closeSync(outW);
  }
}

/** waitpid(WNOHANG) with a short back-off: the child is normally gone when its stdout closes. */
async function reap(pid: number): Promise<number> {
  const status = Buffer.alloc(4);
  let wait = 1;
  for (;;) {
    const r = lc().waitpid(pid, status, WNOHANG);
    if (r === pid) {
      const s = status.readInt32LE(0);
      const sig = s & 0x7f;
      return sig === 0 ? (s >> 8) & 0xff : 128 + sig;
    }
    if (r < 0 && libcErrno() !== EINTR) throw new CniError(CniCode.IoFailure, `waitpid(${pid}) failed (errno ${libcErrno()})`);
    await sleep(wait);
    wait = Math.min(wait * 2, 50);
  }
}

export const posixSpawnRunner: PluginRunner = async (path, command, stdin, env): Promise<ExecResult> => {
  const p = start(path, { ...env, CNI_COMMAND: command });
  const out: Buffer[] = [];
  await new Promise<void>((resolve) => {
    const r = new Socket({ fd: p.stdoutFd, readable: true, writable: false });
    r.on('data', (b: Buffer) => out.push(b));
    r.on('error', () => resolve());
    r.on('close', () => resolve());
    const w = new Socket({ fd: p.stdinFd, readable: false, writable: true });
    // The plugin may exit without reading stdin; its exit code tells the story.
    w.on('error', () => w.destroy());
    w.end(stdin);
  });
  return { stdout: Buffer.concat(out).toString('utf8'), code: await reap(p.pid) };
};
