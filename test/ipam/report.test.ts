import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDatastore } from '../../datastore/memory.js';
import { Ipam } from '../../ipam/ipam.js';
import { isIpamError } from '../../ipam/errors.js';
import {
  borrowedRows,
  checkIpam,
  checkLines,
  configureIpam,
  configurationRows,
  formatG5,
  ipInfo,
  loadSnapshot,
  podOwners,
  releaseFromReport,
  releaseIp,
  showRows,
  usageCell,
  workloadEndpointOwners,
} from '../../ipam/report.js';
import type { IPAMHandle } from '../../api/types.js';
import { addNode, addPool } from './fixtures.js';

async function cluster() {
  const ds = new MemoryDatastore();
  await addPool(ds, 'p4', { cidr: '10.65.0.0/16' });
  await addPool(ds, 'p6', { cidr: 'fd00::/48' });
  return { ds, ipam: new Ipam({ datastore: ds }) };
}

async function addWep(ds: MemoryDatastore, name: string, containerID: string) {
  await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name, namespace: 'default' }, spec: { containerID } });
}

test('number formatting is calicoctl %.5g (%.f%%)', () => {
  assert.equal(usageCell(5, 64), '5 (8%)');
  assert.equal(usageCell(59, 64), '59 (92%)');
  assert.equal(usageCell(65531, 65536), '65531 (100%)');
  assert.equal(formatG5(65536), '65536');
  assert.equal(formatG5(2 ** 80), '1.2089e+24');
  assert.equal(formatG5(123456), '1.2346e+05');
  assert.equal(formatG5(0), '0');
});

test('show: pool and block rows, borrowed rows, configuration, --ip', async () => {
  const { ds, ipam } = await cluster();
  await ipam.autoAssign({ num4: 5, handleId: 'k8s-pod-network.a', hostname: 'n1', attrs: { node: 'n1', namespace: 'ns', pod: 'a' } });
  const rows = showRows(await loadSnapshot(ds), { showBlocks: true });
  assert.deepEqual(rows[0]!.cells, ['IP Pool', '10.65.0.0/16', '65536', '5 (0%)', '65531 (100%)']);
  assert.equal(rows[1]!.grouping, 'Block');
  assert.deepEqual(rows[1]!.cells.slice(2), ['64', '5 (8%)', '59 (92%)']);
  assert.deepEqual(rows[2]!.cells, ['IP Pool', 'fd00::/48', '1.2089e+24', '0 (0%)', '1.2089e+24 (100%)']);
  // Borrowing: n2 takes an address from n1's block once the pool has no other block.
  const ds2 = new MemoryDatastore();
  await addPool(ds2, 'one', { cidr: '10.9.0.0/26' });
  const ib = new Ipam({ datastore: ds2 });
  await ib.autoAssign({ num4: 1, handleId: 'h1', hostname: 'n1', attrs: { node: 'n1' } });
  await ib.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n2', attrs: { node: 'n2', namespace: 'ns', pod: 'b' } });
  assert.deepEqual(borrowedRows(await loadSnapshot(ds2)), [
    { ip: '10.9.0.1', borrowingNode: 'n2', block: '10.9.0.0/26', blockOwner: 'n1', type: 'pod', allocatedTo: 'ns/b' },
  ]);
  assert.deepEqual(configurationRows((await loadSnapshot(ds)).config)[0], ['StrictAffinity', 'false']);
  const snap = await loadSnapshot(ds);
  const ip = rows[1]!.cidr.split('/')[0]!;
  const info = ipInfo(snap, ip);
  assert.equal(info.inUse, true);
  assert.equal(info.handleId, 'k8s-pod-network.a');
  assert.deepEqual(info.lines.slice(0, 2), [`IP ${ip} is in use`, 'Handle ID: k8s-pod-network.a']);
  assert.deepEqual(ipInfo(snap, '10.65.255.1').lines, ['IP 10.65.255.1 is not currently assigned']);
});

test('check: clean cluster has 0 problems; leaks, handle leaks and affinity trouble are found and fixed', async () => {
  const { ds, ipam } = await cluster();
  await addNode(ds, 'n1');
  const live = await ipam.autoAssign({ num4: 1, handleId: 'k8s-pod-network.live', hostname: 'n1' });
  await addWep(ds, 'n1-k8s-live-eth0', 'live');
  await ipam.autoAssign({ num4: 1, handleId: 'ipip-tunnel-addr-n1', hostname: 'n1', intendedUse: 'Tunnel' });
  const owners = workloadEndpointOwners(ds);
  let r = checkIpam(await loadSnapshot(ds), await owners());
  assert.equal(r.summary.problems, 0, JSON.stringify(r));
  assert.equal(r.summary.tunnelIps, 1);
  assert.equal(r.summary.inUseIps, 2);
  assert.ok(checkLines(r).includes('Check complete; found 0 problems.'));

  // A container that vanished without DEL, and a handle written by a process killed before its block write.
  const gone = await ipam.autoAssign({ num4: 1, handleId: 'k8s-pod-network.gone', hostname: 'n1' });
  await ds.create({ apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMHandle', metadata: { name: 'k8s-pod-network.crashed' }, spec: { handleID: 'k8s-pod-network.crashed', block: { [live.ipv4[0]!.block]: 1 } } });
  const h = (await ds.list<IPAMHandle>('IPAMHandle')).items.find((x) => x.spec.handleID === 'k8s-pod-network.live')!;
  await ds.update({ ...h, spec: { ...h.spec, block: { [live.ipv4[0]!.block]: 2 } } });
  // A block whose affinity object is missing.
  const aff = (await ds.list('BlockAffinity')).items[0]!;
  await ds.delete('BlockAffinity', aff.metadata.name);
  r = checkIpam(await loadSnapshot(ds), await owners());
  assert.deepEqual(r.leakedIps.map((l) => l.ip), [gone.ipv4[0]!.ip]);
  assert.equal(typeof r.leakedIps[0]!.sequenceNumber, 'number');
  assert.deepEqual(r.handlesWithoutIps.map((x) => x.handleID), ['k8s-pod-network.crashed']);
  assert.deepEqual(r.handleCountMismatches.map((x) => [x.handleID, x.recorded, x.actual]), [['k8s-pod-network.live', 2, 1]]);
  assert.equal(r.affinityProblems[0]!.problem, 'block-without-affinity');
  assert.equal(r.summary.problems, 4);
  // Round trip through JSON as the file would.
  const out = await releaseFromReport(ipam, JSON.parse(JSON.stringify(r)));
  assert.deepEqual(out.releasedIps, [gone.ipv4[0]!.ip]);
  assert.deepEqual(out.handlesRepaired.sort(), ['k8s-pod-network.crashed', 'k8s-pod-network.live']);
  r = checkIpam(await loadSnapshot(ds), await owners());
  assert.equal(r.summary.problems, 1, 'only the affinity problem is left (not releasable from a report)');
  // Old reports need --force; stale sequence numbers are skipped, not released.
  const old = { ...r, generatedAt: '2020-01-01T00:00:00Z' };
  await assert.rejects(releaseFromReport(ipam, old), (e) => isIpamError(e, 'InvalidArgument'));
});

test('release --ip and configure', async () => {
  const { ds, ipam } = await cluster();
  const a = await ipam.autoAssign({ num4: 1, handleId: 'x', hostname: 'n1' });
  assert.deepEqual((await releaseIp(ipam, a.ipv4[0]!.ip)).lines, [`Successfully released IP address ${a.ipv4[0]!.ip}`]);
  await assert.rejects(releaseIp(ipam, a.ipv4[0]!.ip), (e) => isIpamError(e, 'InvalidArgument'));
  assert.deepEqual(await configureIpam(ipam, { strictAffinity: true, maxBlocksPerHost: 4 }), [
    'Successfully set StrictAffinity to: true',
    'Successfully set MaxBlocksPerHost to: 4',
  ]);
  assert.deepEqual(configurationRows((await loadSnapshot(ds)).config), [
    ['StrictAffinity', 'true'],
    ['AutoAllocateBlocks', 'true'],
    ['MaxBlocksPerHost', '4'],
  ]);
  await assert.rejects(configureIpam(ipam, {}), (e) => isIpamError(e, 'InvalidArgument'));
  await assert.rejects(configureIpam(ipam, { strictAffinity: false }), (e) => isIpamError(e, 'InvalidConfig'));
});

test('pod owner source: the containerID annotation names the live handle', () => {
  const o = podOwners([{ metadata: { annotations: { 'cni.projectcalico.org/containerID': 'abc' } } }, { metadata: {} }], ['n1']);
  assert.deepEqual([...o.handles], ['k8s-pod-network.abc']);
  assert.deepEqual([...o.nodes], ['n1']);
});

test('check: addresses in a disabled (or deleted) pool are reported as outside active pools', async () => {
  const { ds, ipam } = await cluster();
  const a = await ipam.autoAssign({ num4: 2, handleId: 'k8s-pod-network.x', hostname: 'n1' });
  const pool = (await ds.list('IPPool')).items.find((p) => p.metadata.name === 'p4')!;
  await ds.update({ ...pool, spec: { ...(pool.spec as object), disabled: true } });
  const r = checkIpam(await loadSnapshot(ds), { handles: new Set(['k8s-pod-network.x']), nodes: new Set() });
  assert.deepEqual(r.ipsOutsidePools.map((x) => x.ip).sort(), a.ipv4.map((x) => x.ip).sort());
  assert.equal(r.summary.activePools, 1);
  assert.equal(r.summary.problems, 2);
});
