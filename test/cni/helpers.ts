/**
 * Real-kernel CNI test helpers: build once, a temp CNI_PATH with tabby and Debian's plugins, network
 * namespaces named tcn-*, and a runner that execs a plugin inside a "node" namespace (so the host
 * side of each pod lives in a namespace the test owns, never in the machine's own).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, mkdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEBIAN_CNI = '/usr/lib/cni';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts') || e.name.endsWith('.mjs')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function distFresh(): boolean {
  const outs = ['tabby', 'tabby-ipam'].map((n) => join(ROOT, 'dist/bin', `${n}.mjs`));
  if (!outs.every((o) => existsSync(o))) return false;
  const built = Math.min(...outs.map((o) => statSync(o).mtimeMs));
  const src = Math.max(...['cni', 'netlink', 'lib', 'api', 'datastore', 'ipam', 'scripts'].map((d) => (existsSync(join(ROOT, d)) ? newestMtime(join(ROOT, d)) : 0)));
  return src < built;
}

let built = false;
/**
 * Build dist/ unless it is newer than every source. Test files run in parallel processes and exec
 * the bundles: a rebuild while another file's plugin is loading them would make it fail, so the
 * check-and-build runs under a cross-process lock (mkdir) and is skipped when dist is fresh.
 */
export function buildOnce(): void {
  if (built) return;
  const lock = join(ROOT, 'dist/.build-lock');
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // a stale lock (a killed test) is taken over after 60 s
      if (Date.now() > deadline) break;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    if (!distFresh()) execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { stdio: 'ignore' });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  built = true;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function netnsAdd(name: string): string {
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return `/var/run/netns/${name}`;
}

export function netnsDel(name: string): void {
  if (existsSync(`/var/run/netns/${name}`)) sh('ip', ['netns', 'del', name]);
}

export function inNs(ns: string, cmd: string[]): string {
  return sh('ip', ['netns', 'exec', ns, ...cmd]);
}

/** A temp dir holding bin/ (CNI_PATH), lib/ (lib_dir), ipam/ (host-local data) and cni.log. */
export async function cniDir(extraPlugins: string[] = ['host-local', 'portmap', 'bandwidth', 'bridge', 'loopback']): Promise<{ dir: string; bin: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tcn-cni-'));
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await symlink(join(ROOT, 'bin/tabby'), join(bin, 'tabby'));
  await symlink(join(ROOT, 'bin/tabby-ipam'), join(bin, 'tabby-ipam'));
  for (const p of extraPlugins) await symlink(join(DEBIAN_CNI, p), join(bin, p));
  return { dir, bin, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface PluginRun {
  code: number;
  out: Record<string, unknown> | undefined;
  raw: string;
}

export interface PluginCall {
  plugin: string;
  command: string;
  /** A string is written to stdin as is (malformed input tests). */
  conf: Record<string, unknown> | string;
  containerId: string;
  netns: string;
  ifname?: string;
  args?: string;
  cniPath: string;
  /** Run inside this namespace (the test's "node"); default: the current one. */
  nodeNs?: string;
  /** Extra environment (e.g. TABBY_CNI_SERVER=off). */
  env?: NodeJS.ProcessEnv;
}

export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export function runPlugin(c: PluginCall): Promise<PluginRun> {
  const path = join(c.cniPath, c.plugin);
  const [cmd, args] = c.nodeNs ? ['ip', ['netns', 'exec', c.nodeNs, path]] : [path, []];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, args as string[], {
      env: {
        ...childEnv(),
        CNI_COMMAND: c.command,
        CNI_CONTAINERID: c.containerId,
        CNI_NETNS: c.netns,
        CNI_IFNAME: c.ifname ?? 'eth0',
        CNI_PATH: c.cniPath,
        CNI_ARGS: c.args ?? 'IgnoreUnknown=1',
        ...c.env,
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let raw = '';
    child.stdout.on('data', (b: Buffer) => (raw += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      let out: Record<string, unknown> | undefined;
      try {
        out = raw.trim() ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      } catch {
        out = undefined;
      }
      resolve({ code: code ?? 1, out, raw });
    });
    child.stdin.end(typeof c.conf === 'string' ? c.conf : JSON.stringify(c.conf));
  });
}

/** Run a conflist the way libcni does: ADD in order with prevResult, DEL in reverse. */
export async function runChain(command: 'ADD' | 'DEL' | 'CHECK', list: { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> }, base: Omit<PluginCall, 'plugin' | 'command' | 'conf'>, prev?: Record<string, unknown>): Promise<PluginRun> {
  const plugins = command === 'DEL' ? [...list.plugins].reverse() : list.plugins;
  let prevResult = prev;
  let last: PluginRun = { code: 0, out: undefined, raw: '' };
  for (const p of plugins) {
    const conf: Record<string, unknown> = { cniVersion: list.cniVersion, name: list.name, ...p };
    if (prevResult) conf.prevResult = prevResult;
    last = await runPlugin({ ...base, plugin: String(p.type), command, conf });
    if (last.code !== 0) return last;
    if (command === 'ADD' && last.out) prevResult = last.out;
  }
  return command === 'ADD' ? { ...last, out: prevResult } : last;
}
