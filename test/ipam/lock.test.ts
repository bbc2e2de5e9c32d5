import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isIpamError } from '../../ipam/errors.js';
import { lockPath, withHostLock } from '../../ipam/lock.js';

const root = new URL('../..', import.meta.url).pathname;

test('in-process: calls for one host run one at a time, in order; other hosts are not blocked', async () => {
  const events: string[] = [];
  const slow = (tag: string) => async () => {
    events.push(`${tag}+`);
    await new Promise((r) => setTimeout(r, 5));
    events.push(`${tag}-`);
  };
  await Promise.all([withHostLock('h', {}, slow('a')), withHostLock('h', {}, slow('b')), withHostLock('h', {}, slow('c'))]);
  assert.deepEqual(events, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  const order: string[] = [];
  await Promise.all([
    withHostLock('x', {}, async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push('x');
    }),
    withHostLock('y', {}, async () => void order.push('y')),
  ]);
  assert.deepEqual(order, ['y', 'x']);
  await assert.rejects(withHostLock('h', {}, async () => { throw new Error('inner'); }), /inner/);
  assert.equal(await withHostLock('h', {}, async () => 7), 7, 'a failed holder releases the lock');
});

test('across processes: flock held by another process blocks until released, times out cleanly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-ipam-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const holder = `
    import { withHostLock } from ${JSON.stringify(join(root, 'ipam/lock.ts'))};
    await withHostLock('n1', { runDir: ${JSON.stringify(dir)} }, async () => {
      process.stdout.write('locked\\n');
      await new Promise((r) => setTimeout(r, 600));
    });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', holder], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve()));
  await assert.rejects(withHostLock('n1', { runDir: dir, timeoutMs: 50 }, async () => 1), (e) => isIpamError(e, 'LockTimeout') && e.message.includes(lockPath(dir, 'n1')));
  // Waits for the holder to finish, then gets the lock.
  assert.equal(await withHostLock('n1', { runDir: dir, timeoutMs: 20_000 }, async () => 'mine'), 'mine');
  // A killed holder never leaves the node locked (the kernel drops flock with the process).
  const killed = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', holder.replace('600', '60000')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => killed.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve()));
  killed.kill('SIGKILL');
  await new Promise((r) => killed.once('exit', r));
  assert.equal(await withHostLock('n1', { runDir: dir, timeoutMs: 5_000 }, async () => 'after-kill'), 'after-kill');
});
