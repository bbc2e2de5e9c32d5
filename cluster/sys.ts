/**
 * Thin process/namespace edge of the cluster harness: run a command (inside a namespace), start a
 * detached daemon with a log file, check and stop a recorded process, list namespaces.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { ClusterError } from './plan.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment for children: without NODE_EXTRA_CA_CERTS (adds ~115 ms to every node start). */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Run a command; never throws for a non-zero exit (see `must`). */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env: opts.env ?? childEnv(), timeout: opts.timeoutMs ?? 60000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 127;
        resolve({ code, stdout, stderr: stderr || (err !== null && code === 127 ? err.message : '') });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Run and throw a ClusterError naming the command when it fails. */
export async function must(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new ClusterError(`\`${[cmd, ...args].join(' ')}\` failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  }
  return r.stdout;
}

export function inNs(ns: string, cmd: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, ...cmd], opts);
}

export function netnsExists(ns: string): boolean {
  return existsSync(`/var/run/netns/${ns}`);
}

export function listNetns(prefix: string): string[] {
  try {
    return readdirSync('/var/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/**
 * Start `cmd` inside namespace `ns`, detached from this process (own process group, stdio to
 * `log`), so it outlives the CLI. `ip netns exec` execs the command, so the pid is the daemon's.
 */
export function spawnDetached(ns: string, cmd: string[], log: string, env: NodeJS.ProcessEnv): number {
  const fd = openSync(log, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { detached: true, stdio: ['ignore', fd, fd], env });
    child.unref();
    if (child.pid === undefined) throw new ClusterError(`could not start ${cmd[0]} in ${ns}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** True when pid is alive and its command line contains `match`. */
export function procAlive(pid: number, match: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && cmdline.includes(match);
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, wait up to graceMs, then SIGKILL. Only pids whose cmdline matches are signalled. */
export async function stopProc(pid: number, match: string, graceMs = 3000): Promise<boolean> {
  if (!procAlive(pid, match)) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  const end = Date.now() + graceMs;
  while (Date.now() < end) {
    if (!procAlive(pid, match)) return true;
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  const end2 = Date.now() + 2000;
  while (Date.now() < end2 && procAlive(pid, match)) await sleep(50);
  return true;
}

/** Pids of processes living in network namespace ns (`ip netns pids`). */
export async function netnsPids(ns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', ns]);
  if (r.code !== 0) return [];
  return r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 1 && n !== process.pid);
}

/** Whether a program is on PATH. */
export async function haveCommand(cmd: string): Promise<boolean> {
  // Debian puts bird, ip and sysctl in /usr/sbin, which a non-root PATH may lack.
  const r = await run('sh', ['-c', `PATH="$PATH:/usr/sbin:/sbin" command -v ${cmd}`]);
  return r.code === 0;
}
