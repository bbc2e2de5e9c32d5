/**
 * bin/tabby-node's V8 handling on a started agent (root: the agent's dataplane runs in a netns of
 * its own, prefix tlc-; in-memory datastore, no BGP):
 * - once the agent has started, the launcher raises the interrupt budget and writes its code cache
 *   2 s later, under V8's default flag hash;
 * - so the next start accepts that cache and does not write it again. A cache written under the
 *   raised budget would be rejected (V8 stamps cached code with the flag hash) and rewritten on
 *   every start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { launcherTestEnv } from './launcher-env.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const NS = `tlc-${process.pid % 100000}`;

test('a started agent writes a code cache that the next start accepts (the raised interrupt budget is not in it)', async (t) => {
  const skip = firstReason(needRoot(), needCommand('ip', 'iproute2'), needCommand('nft', 'nftables'));
  if (skip) return t.skip(skip);
  const r = spawnSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, `build failed: ${r.stdout}${r.stderr}`);
  const dir = mkdtempSync(join(tmpdir(), 'tabby-launcher-'));
  execFileSync('ip', ['netns', 'add', NS]);
  t.after(() => {
    spawnSync('ip', ['netns', 'del', NS]);
    rmSync(dir, { recursive: true, force: true });
  });
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', NS, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']); // no dummy module on every kernel
  execFileSync('ip', ['-n', NS, 'link', 'set', 'eth1', 'up']);
  execFileSync('ip', ['-n', NS, 'addr', 'add', '10.77.0.5/24', 'dev', 'eth0']);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'eth0', 'up']);
  const cacheDir = join(dir, 'cache');
  const cacheFiles = (): string[] => (existsSync(cacheDir) ? readdirSync(cacheDir).filter((f) => f.endsWith('.v8')) : []);

  /** Runs the agent until `done()` holds (checked every 100 ms after "tabby-node started"), then kills it. */
  const agent = async (done: (startedAt: number) => boolean): Promise<string> => {
    const env = launcherTestEnv(dir, cacheDir, { NODENAME: 'lc-node', DATASTORE_TYPE: 'memory', IP: '10.77.0.5/24', CALICO_IPV4POOL_CIDR: '10.78.0.0/16' });
    const child = spawn('ip', ['netns', 'exec', NS, join(root, 'bin/tabby-node')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      let startedAt = 0;
      for (let i = 0; i < 300; i++) {
        if (child.exitCode !== null) break;
        if (!startedAt && out.includes('"tabby-node started"')) startedAt = Date.now();
        if (startedAt && done(startedAt)) return out;
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.fail(`tabby-node did not get there (exit ${child.exitCode}): ${out.slice(-1500)}`);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  };

  // 1. First start: no cache; written 2 s after "started".
  await agent(() => cacheFiles().length > 0);
  assert.equal(cacheFiles().length, 1);
  const file = join(cacheDir, cacheFiles()[0]!);
  const written = statSync(file).ino;
  // 2. Second start: V8 accepts the cache, so nothing is written 2 s after "started" (same inode).
  await agent((startedAt) => Date.now() - startedAt > 3500);
  assert.equal(statSync(file).ino, written, 'the cache written after the budget was raised was rejected by the next start');
  assert.deepEqual(cacheFiles().length, 1);
});
