import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniError } from '../../cni/protocol/errors.js';
import { runPlugin } from '../../cni/plugin/exec.js';
import { posixSpawnRunner } from '../../node/posix-spawn.js';

function script(t: { after: (fn: () => void) => void }, body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-pspawn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = join(dir, 'plugin');
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

test('posix_spawn runner: stdin in, stdout out, exit code and environment as child_process gives them', async (t) => {
  const p = script(t, 'echo "cmd=$CNI_COMMAND x=$X"; cat; exit 3');
  const env = { X: 'y z', PATH: process.env.PATH };
  const got = await posixSpawnRunner(p, 'ADD', '{"a":1}\n', env);
  assert.deepEqual(got, { stdout: 'cmd=ADD x=y z\n{"a":1}\n', code: 3 });
  assert.deepEqual(got, await runPlugin(p, 'ADD', '{"a":1}\n', env));
});

test('posix_spawn runner: the child gets default signal dispositions and an empty mask (Node ignores SIGPIPE)', async (t) => {
  const p = script(t, 'grep -E "^Sig(Ign|Blk)" /proc/self/status');
  const got = await posixSpawnRunner(p, 'VERSION', '', { PATH: process.env.PATH });
  assert.equal(got.code, 0);
  assert.match(got.stdout, /SigBlk:\s+0+\n/);
  assert.match(got.stdout, /SigIgn:\s+0+\n/);
});

test('posix_spawn runner: a plugin that does not read stdin, one killed by a signal, one that is not there', async (t) => {
  const quiet = script(t, 'echo done');
  assert.deepEqual(await posixSpawnRunner(quiet, 'DEL', 'x'.repeat(1 << 20), {}), { stdout: 'done\n', code: 0 });
  const killed = script(t, 'kill -TERM $$');
  assert.deepEqual(await posixSpawnRunner(killed, 'DEL', '', {}), { stdout: '', code: 128 + 15 });
  await assert.rejects(posixSpawnRunner('/nonexistent/plugin', 'ADD', '', {}), (e: unknown) => e instanceof CniError && e.cniCode === 5);
});

test('posix_spawn runner: 20 at once', async (t) => {
  const p = script(t, 'cat');
  const all = await Promise.all(Array.from({ length: 20 }, (_, i) => posixSpawnRunner(p, 'ADD', `n${i}`, {})));
  assert.deepEqual(all.map((r) => r.stdout), Array.from({ length: 20 }, (_, i) => `n${i}`));
});
