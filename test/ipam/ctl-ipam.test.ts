import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDatastore } from '../../datastore/memory.js';
import { Ipam } from '../../ipam/ipam.js';
import { formatBorderedTable } from '../../ctl/commands/ipam.js';
import { ctl } from '../ctl/harness.js';
import { addPool } from './fixtures.js';

const run = (ds: MemoryDatastore, ...args: string[]) => ctl(ds, ['--allow-version-mismatch', 'ipam', ...args]);

test('bordered table matches calicoctl layout', () => {
  assert.equal(
    formatBorderedTable(['GROUPING', 'CIDR', 'IPS TOTAL'], [['IP Pool', '10.65.0.0/16', '65536']]),
    ['+----------+--------------+-----------+', '| GROUPING |     CIDR     | IPS TOTAL |', '+----------+--------------+-----------+', '| IP Pool  | 10.65.0.0/16 |     65536 |', '+----------+--------------+-----------+', ''].join('\n'),
  );
});

test('tabbyctl ipam show/check/release/configure end to end over the memory datastore', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-ipam-ctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  await addPool(ds, 'p', { cidr: '10.65.0.0/16' });
  const ipam = new Ipam({ datastore: ds });
  const got = await ipam.autoAssign({ num4: 5, handleId: 'k8s-pod-network.gone', hostname: 'n1', attrs: { node: 'n1', namespace: 'ns', pod: 'p' } });
  const show = await run(ds, 'show', '--show-blocks');
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /\| IP Pool {2}\| 10\.65\.0\.0\/16 {4}\| {5}65536 \| 5 \(0%\) {5}\| 65531 \(100%\) \|/);
  assert.match(show.stdout, /\| Block {4}\| .*\/26 .*\| {8}64 \| 5 \(8%\) {5}\| 59 \(92%\) {5}\|/);
  const ipLines = await run(ds, 'show', `--ip=${got.ipv4[0]!.ip}`);
  assert.match(ipLines.stdout, /is in use\nHandle ID: k8s-pod-network.gone\nAttributes:/);
  // No workload endpoint owns the handle: check reports 5 leaked IPs and writes the report.
  const report = join(dir, 'report.json');
  const check = await run(ds, 'check', '-o', report);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /Found 5 IPs that are allocated in IPAM but not actually in use\./);
  assert.equal(JSON.parse(readFileSync(report, 'utf8')).summary.problems, 5);
  const rel = await run(ds, 'release', `--from-report=${report}`);
  assert.equal(rel.code, 0, rel.stderr);
  assert.match(rel.stdout, /Releasing 5 old IPs\.\.\.\nReleased 5 IPs successfully/);
  assert.match((await run(ds, 'check')).stdout, /Check complete; found 0 problems\./);
  assert.match((await run(ds, 'show')).stdout, /\| 0 \(0%\)/);
  const bad = await run(ds, 'release', '--ip=10.65.9.9');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /not assigned/);
  const cfg = await run(ds, 'configure', '--strictaffinity=true', '--max-blocks-per-host=3');
  assert.equal(cfg.code, 0, cfg.stderr);
  assert.match((await run(ds, 'show', '--show-configuration')).stdout, /\| MaxBlocksPerHost {3}\| {5}3 \|/);
  assert.equal((await run(ds, 'configure', '--strictaffinity=maybe')).code, 1);
});
