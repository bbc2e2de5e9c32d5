/**
 * tabby-ipam in-process vs exec'd: when each path is taken, and both give the same results and the same
 * errors (code, msg, details) for the same stdin and environment. Uses the built bin/tabby-ipam for the
 * exec path and a memory datastore (fresh per invocation: no pools, so ADD fails the same way on both).
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execDelegate } from '../../cni/plugin/exec.js';
import { ipamDelegate, useInProcessIpam } from '../../cni/plugin/ipam-delegate.js';
import { CniCode, CniError } from '../../cni/protocol/errors.js';
import { ROOT, buildOnce } from './helpers.js';

const OWN = join(ROOT, 'bin');

async function paths(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'tcn-ipamdel-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ours = join(dir, 'ours');
  const other = join(dir, 'other');
  await mkdir(ours);
  await mkdir(other);
  await symlink(join(ROOT, 'bin/tabby-ipam'), join(ours, 'tabby-ipam'));
  await writeFile(join(other, 'tabby-ipam'), '#!/bin/sh\necho "{}"\n');
  await chmod(join(other, 'tabby-ipam'), 0o755);
  return { dir, ours, other };
}

test('in-process only for our own tabby-ipam, unless switched off by env or config', async (t) => {
  const p = await paths(t);
  const conf = (ipam: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tabby', ipam: { type: 'tabby-ipam', ...ipam } });
  assert.equal(useInProcessIpam('tabby-ipam', conf(), {}, [p.ours], OWN), true);
  assert.equal(useInProcessIpam('tabby-ipam', conf(), { TABBY_CNI_IPAM: 'exec' }, [p.ours], OWN), false, 'env switch');
  assert.equal(useInProcessIpam('tabby-ipam', conf({ in_process: false }), {}, [p.ours], OWN), false, 'config switch');
  assert.equal(useInProcessIpam('tabby-ipam', conf(), {}, [p.other, p.ours], OWN), false, 'the first tabby-ipam in CNI_PATH is not ours');
  assert.equal(useInProcessIpam('host-local', conf(), {}, [p.ours], OWN), false);
  assert.equal(useInProcessIpam('tabby-ipam', conf(), {}, [p.ours], undefined), false, 'own location unknown');
  assert.throws(() => useInProcessIpam('tabby-ipam', conf({ in_process: 'yes' }), {}, [p.ours], OWN), (e: unknown) => e instanceof CniError && e.cniCode === CniCode.InvalidNetworkConfig);
  // Not installed: the same error as the exec path.
  const viaExec = await execDelegate('tabby-ipam', 'ADD', conf(), {}, [p.dir]).catch((e: unknown) => e);
  assert.throws(() => useInProcessIpam('tabby-ipam', conf(), {}, [p.dir], OWN), (e: unknown) => e instanceof CniError && e.cniCode === (viaExec as CniError).cniCode && e.message === (viaExec as CniError).message);
});

test('in-process and exec tabby-ipam: same results and errors', { timeout: 120_000 }, async (t) => {
  buildOnce();
  const p = await paths(t);
  let ran = 0;
  const inProc = ipamDelegate(() => Promise.reject(new Error('exec path taken')), OWN, async (command, stdin, env) => {
    ran++;
    const { runIpamInProcess } = await import('../../cni/plugin/ipam-delegate.js');
    return runIpamInProcess(command, stdin, env);
  });
  const env = { PATH: process.env.PATH ?? '', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: p.ours, CNI_ARGS: 'K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod' };
  const base = { cniVersion: '1.0.0', name: 'tcn-net', type: 'tabby', datastore_type: 'memory', nodename: 'node-a', log_file_path: join(p.dir, 'ipam.log') };
  const ipam = { type: 'tabby-ipam', run_dir: join(p.dir, 'run') };
  const outcome = (x: Promise<unknown>) =>
    x.then(
      (result) => ({ result }),
      (e: unknown) => (e instanceof CniError ? { code: e.cniCode, msg: e.message, details: e.details } : { other: String(e) }),
    );
  const cases: Array<[string, Record<string, unknown>]> = [
    ['VERSION', { cniVersion: '1.0.0' }],
    ['ADD', { ...base, ipam }],
    ['DEL', { ...base, ipam }],
    ['CHECK', { ...base, ipam }],
    ['ADD', { ...base, ipam: { ...ipam, assign_ipv4: 'false' } }],
    ['ADD', { ...base, cniVersion: '0.2.0', ipam }],
    ['STATUS', { ...base, cniVersion: '1.1.0', ipam }],
  ];
  for (const [command, conf] of cases) {
    const stdin = JSON.stringify(conf);
    const a = await outcome(inProc('tabby-ipam', command, stdin, env, [p.ours]));
    const b = await outcome(execDelegate('tabby-ipam', command, stdin, { ...env, TABBY_CNI_IPAM: 'exec' }, [p.ours]));
    assert.ok(!('other' in a), `${command}: ${JSON.stringify(a)}`);
    assert.deepEqual(a, b, `${command} ${stdin}`);
  }
  assert.equal(ran, cases.length, 'every case ran in-process');
  // ADD with no pool is IPAM's NoPools (101), named after the delegate.
  const add = await outcome(inProc('tabby-ipam', 'ADD', JSON.stringify({ ...base, ipam }), env, [p.ours]));
  assert.equal((add as { code?: number }).code, 101, JSON.stringify(add));
  assert.match(String((add as { msg?: string }).msg), /^tabby-ipam ADD: /);
});
