/**
 * Network-namespace lab for interop tests: a tabby namespace and a peer namespace joined by a
 * veth pair (10.99.<net>.2 = tabby, 10.99.<net>.1 = peer), the tabby-bgp daemon as a child
 * process, and cleanup of everything on test end. Names start with tbr- (or the given prefix).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { nsName } from '../session/interop.js';

export { nsName };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryDel(ns: string): void {
  try {
    sh('ip', ['netns', 'del', ns]);
  } catch {
    // not there
  }
}

export interface Lab {
  dir: string;
  tabbyNs: string;
  peerNs: string;
  tabbyIp: string;
  peerIp: string;
  /** Start a process inside a namespace; killed (SIGKILL) at test end unless already gone. */
  spawnIn(ns: string, cmd: string, args: string[]): ChildProcess & { output: () => string };
  /** Start the tabby-bgp daemon with this YAML/JSON config text. */
  startTabby(config: string): ChildProcess & { output: () => string };
}

/** `prefix`: the namespace name prefix (each helper's tests keep to their own). */

export function makeLab(t: TestContext, name: string, net: number, prefix = 'tbr'): Lab {
  const tabbyNs = nsName(`${prefix}-${name}-t`);
  const peerNs = nsName(`${prefix}-${name}-p`);
  const dir = mkdtempSync(path.join(tmpdir(), `${prefix}-${name}-`));
  const procs: ChildProcess[] = [];
  t.after(() => {
    // Each process leads its own group: kill the group so helpers they started (ExaBGP's
    // announce script) go too.
    for (const p of procs) {
      if (p.pid === undefined) continue;
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    tryDel(tabbyNs);
    tryDel(peerNs);
    rmSync(dir, { recursive: true, force: true });
  });
  tryDel(tabbyNs);
  tryDel(peerNs);
  sh('ip', ['netns', 'add', tabbyNs]);
  sh('ip', ['netns', 'add', peerNs]);
  const tabbyIp = `10.99.${net}.2`;
  const peerIp = `10.99.${net}.1`;
  sh('ip', ['-n', tabbyNs, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', 'e0', 'netns', peerNs]);
  for (const [ns, ip] of [
    [tabbyNs, tabbyIp],
    [peerNs, peerIp],
  ] as const) {
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'e0']);
    sh('ip', ['-n', ns, 'link', 'set', 'e0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  const spawnIn = (ns: string, cmd: string, args: string[]) => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: root, detached: true }) as ChildProcess & { output: () => string };
    let out = '';
    p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    p.output = () => out;
    procs.push(p);
    return p;
  };
  return {
    dir,
    tabbyNs,
    peerNs,
    tabbyIp,
    peerIp,
    spawnIn,
    startTabby(config: string) {
      const file = path.join(dir, 'tabby-bgp.yaml');
      writeFileSync(file, config);
      return spawnIn(tabbyNs, process.execPath, ['--import', 'tsx', path.join(root, 'bgp/daemon-main.ts'), '-c', file]);
    },
  };
}

export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 30_000, debug?: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    let v: T | undefined | false;
    try {
      v = await probe();
    } catch {
      v = undefined;
    }
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${debug ? `\n${debug()}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
