import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDatastore } from '../../datastore/memory.js';
import { Ipam } from '../../ipam/ipam.js';
import { ensureTunnelAddress } from '../../ipam/tunnel.js';
import { allocationContainer, type GcOwners, type GcState, ownersFromPods, ownersFromWorkloadEndpoints, planGc, tunnelHandleNode } from '../../ipam/gc.js';
import { addNode, addPool } from './fixtures.js';

const GRACE = 60_000;

async function cluster() {
  const ds = new MemoryDatastore();
  await addPool(ds, 'p4', { cidr: '10.70.0.0/16', blockSize: 26 });
  const ipam = new Ipam({ datastore: ds });
  return { ds, ipam };
}

async function pod(ipam: Ipam, node: string, cid: string, pod = cid) {
  const r = await ipam.autoAssign({ num4: 1, handleId: `k8s-pod-network.${cid}`, hostname: node, attrs: { node, namespace: 'ns', pod, containerID: cid } });
  return r.ipv4[0]!.ip;
}

async function snapshot(ipam: Ipam) {
  const [blocks, affinities, handles] = await Promise.all([ipam.store.listBlocks(), ipam.store.listAffinities(), ipam.store.listHandles()]);
  return { blocks, affinities, handles };
}

function owners(nodes: string[], containers: Record<string, string[]>): GcOwners {
  return { nodes: new Set(nodes), containers: new Map(Object.entries(containers).map(([k, v]) => [k, new Set(v)])) };
}

async function plan(ipam: Ipam, o: GcOwners, previous: GcState, now: number) {
  return planGc({ ...(await snapshot(ipam)), owners: o, previous, now, graceMs: GRACE });
}

test('an ownerless allocation is released only on a second observation at least the grace later', async () => {
  const { ipam } = await cluster();
  const live = await pod(ipam, 'n1', 'live');
  const gone = await pod(ipam, 'n1', 'gone');
  const o = owners(['n1'], { live: [live] });
  const p1 = await plan(ipam, o, new Map(), 1_000);
  assert.deepEqual(p1.candidates.map((c) => [c.ip, c.reason, c.since]), [[gone, 'owner-gone', 1_000]]);
  assert.equal(p1.releases.length, 0, 'first observation never releases');
  const p2 = await plan(ipam, o, p1.state, 1_000 + GRACE - 1);
  assert.equal(p2.releases.length, 0, 'second observation inside the grace does not release');
  assert.equal(p2.candidates[0]!.since, 1_000, 'the first sighting is kept');
  const p3 = await plan(ipam, o, p2.state, 1_000 + GRACE);
  assert.deepEqual(p3.releases.map((c) => [c.ip, c.handle, c.reason]), [[gone, 'k8s-pod-network.gone', 'owner-gone']]);
  assert.equal(typeof p3.releases[0]!.sequenceNumber, 'number');
  // Without a previous observation, even a long time later, nothing is due.
  assert.equal((await plan(ipam, o, new Map(), 10 * GRACE)).releases.length, 0);
});

test('an owner that reappears between observations drops the observation', async () => {
  const { ipam } = await cluster();
  const ip = await pod(ipam, 'n1', 'c1');
  const p1 = await plan(ipam, owners(['n1'], {}), new Map(), 0);
  assert.equal(p1.candidates.length, 1);
  const p2 = await plan(ipam, owners(['n1'], { c1: [ip] }), p1.state, GRACE);
  assert.equal(p2.candidates.length, 0);
  assert.equal(p2.releases.length, 0);
  assert.equal(p2.state.size, 0, 'nothing remembered for a live allocation');
  const p3 = await plan(ipam, owners(['n1'], {}), p2.state, 2 * GRACE);
  assert.equal(p3.releases.length, 0, 'owner gone again: the grace starts over');
  assert.equal(p3.candidates[0]!.since, 2 * GRACE);
});

test('IP mismatch: the owner records other addresses; an owner without addresses yet keeps all', async () => {
  const { ipam } = await cluster();
  const ip = await pod(ipam, 'n1', 'c1');
  const p1 = await plan(ipam, owners(['n1'], { c1: ['10.99.0.1'] }), new Map(), 0);
  assert.deepEqual(p1.candidates.map((c) => [c.ip, c.reason]), [[ip, 'ip-mismatch']]);
  assert.equal((await plan(ipam, owners(['n1'], { c1: ['10.99.0.1'] }), p1.state, GRACE)).releases.length, 1);
  assert.equal((await plan(ipam, owners(['n1'], { c1: [] }), p1.state, GRACE)).candidates.length, 0);
});

test('an address re-allocated between observations starts a new observation', async () => {
  const { ipam } = await cluster();
  const ip = await pod(ipam, 'n1', 'old');
  const p1 = await plan(ipam, owners(['n1'], {}), new Map(), 0);
  await ipam.releaseIps([ip]);
  // The same ordinal goes to a new (also ownerless) container: a new sequence number, a new key.
  await ipam.assignIp({ ip, handleId: 'k8s-pod-network.new', hostname: 'n1', attrs: { node: 'n1', namespace: 'ns', pod: 'new', containerID: 'new' } });
  const p2 = await plan(ipam, owners(['n1'], {}), p1.state, GRACE);
  assert.equal(p2.releases.length, 0);
  assert.equal(p2.candidates[0]!.handle, 'k8s-pod-network.new');
  assert.equal(p2.candidates[0]!.since, GRACE);
});

test('tunnel addresses are kept while their Node exists; a deleted Node loses allocations, affinities and tunnel handle', async () => {
  const { ds, ipam } = await cluster();
  await addNode(ds, 'n1');
  await addNode(ds, 'n2');
  const tunnel = await ensureTunnelAddress(ipam, 'n2', 'vxlan');
  const p2ip = await pod(ipam, 'n2', 'c2');
  // n1 borrows nothing; a pod of n1 lives in n1's own block.
  const p1ip = await pod(ipam, 'n1', 'c1');
  const alive = owners(['n1', 'n2'], { c1: [p1ip], c2: [p2ip] });
  const k = await plan(ipam, alive, new Map(), 0);
  assert.equal(k.candidates.length, 0, 'tunnel handle of an existing node is live');
  assert.equal(tunnelHandleNode('vxlan-tunnel-addr-n2'), 'n2');

  // n2's Node resource is deleted (its pod's WorkloadEndpoint lingers: the node is gone all the same).
  const gone = owners(['n1'], { c1: [p1ip], c2: [p2ip] });
  const d1 = await plan(ipam, gone, new Map(), 0);
  assert.deepEqual(d1.candidates.map((c) => [c.ip, c.reason]).sort(), [[p2ip, 'node-deleted'], [tunnel, 'node-deleted']].sort());
  assert.deepEqual(d1.deletedNodes, []);
  assert.deepEqual(d1.affinityReleases, []);
  const d2 = await plan(ipam, gone, d1.state, GRACE);
  assert.deepEqual(d2.deletedNodes, ['n2']);
  assert.deepEqual(d2.releases.map((c) => c.ip).sort(), [p2ip, tunnel].sort());
  assert.deepEqual(d2.affinityReleases.map((a) => a.node), ['n2']);
  assert.deepEqual(d2.handleCleanups, [], 'tunnel handle still has its allocation: released with it');
  // Node re-created before the grace ends: nothing of it is released.
  const back = await plan(ipam, alive, d1.state, GRACE);
  assert.equal(back.releases.length + back.affinityReleases.length + back.deletedNodes.length, 0);
});

test('a tunnel handle of a deleted node with no allocation left is cleaned up', async () => {
  const { ds, ipam } = await cluster();
  await ds.create({ apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMHandle', metadata: { name: 'ipip-tunnel-addr-n9' }, spec: { handleID: 'ipip-tunnel-addr-n9', block: { '10.70.0.0/26': 1 }, deleted: false } });
  const p1 = await plan(ipam, owners([], {}), new Map(), 0);
  const p2 = await plan(ipam, owners([], {}), p1.state, GRACE);
  assert.deepEqual(p2.deletedNodes, ['n9']);
  assert.deepEqual(p2.handleCleanups, ['ipip-tunnel-addr-n9']);
});

test('borrowed IPs: a live pod borrowing from a deleted node keeps its address; the block affinity is released', async () => {
  const ds = new MemoryDatastore();
  await addPool(ds, 'tiny', { cidr: '10.71.0.0/26', blockSize: 26 });
  const ipam = new Ipam({ datastore: ds });
  const a = await pod(ipam, 'n1', 'ca');
  const b = await pod(ipam, 'n2', 'cb'); // the pool has one block (n1's): n2 borrows
  const snap = await snapshot(ipam);
  assert.equal(snap.blocks.length, 1);
  assert.equal(snap.blocks[0]!.spec.affinity, 'host:n1');
  const o = owners(['n2'], { ca: [a], cb: [b] });
  const p1 = await plan(ipam, o, new Map(), 0);
  const p2 = await plan(ipam, o, p1.state, GRACE);
  assert.deepEqual(p2.releases.map((c) => c.ip), [a], "only n1's own pod goes");
  assert.deepEqual(p2.affinityReleases, [{ node: 'n1', cidr: '10.71.0.0/26' }]);
  // The borrowed address is judged by its own owner.
  const p3 = await plan(ipam, owners(['n2'], { ca: [a] }), p2.state, GRACE);
  assert.equal(p3.candidates.find((c) => c.ip === b)?.reason, 'owner-gone');
});

test('allocations without an owner we can judge are never candidates', async () => {
  const { ipam } = await cluster();
  await ipam.autoAssign({ num4: 2, handleId: 'manual-reservation', hostname: 'n1' });
  await ipam.autoAssign({ num4: 1, hostname: 'n1', attrs: { note: 'no handle' } });
  const p1 = await plan(ipam, owners(['n1'], {}), new Map(), 0);
  assert.equal(p1.candidates.length, 0);
  assert.equal(allocationContainer('k8s-pod-network.abc', { namespace: 'ns', pod: 'p' }), 'abc', 'Calico-style handle with pod attributes');
  assert.equal(allocationContainer('k8s-pod-network.abc', undefined), undefined);
  assert.equal(allocationContainer('x', { containerID: 'cid' }), 'cid');
});

test('owner snapshots from WorkloadEndpoints and from pods (Kubernetes: pod name and IP decide)', async () => {
  const w = ownersFromWorkloadEndpoints([{ spec: { containerID: 'c1', ipNetworks: ['10.70.0.1/32', 'fd00:0:0::1/128'] } }, { spec: {} }], ['n1']);
  assert.deepEqual([...w.containers.get('c1')!], ['10.70.0.1', 'fd00::1'], 'prefix stripped, IPv6 canonical');
  assert.equal(w.containers.size, 1);
  assert.ok(w.nodes.has('n1'));

  const { ipam } = await cluster();
  const ip = await pod(ipam, 'n1', 'sandbox-1', 'web-0');
  const o = ownersFromPods([{ metadata: { namespace: 'ns', name: 'web-0', annotations: {} }, status: { podIPs: [{ ip }] } }], ['n1']);
  assert.equal((await plan(ipam, o, new Map(), 0)).candidates.length, 0, 'pod exists with this IP (no containerID annotation needed)');
  // StatefulSet pod re-created under the same name with another address: the old one is leaked.
  const moved = ownersFromPods([{ metadata: { namespace: 'ns', name: 'web-0' }, status: { podIP: '10.70.9.9' } }], ['n1']);
  assert.equal((await plan(ipam, moved, new Map(), 0)).candidates[0]?.reason, 'ip-mismatch');
  const deleted = ownersFromPods([], ['n1']);
  assert.equal((await plan(ipam, deleted, new Map(), 0)).candidates[0]?.reason, 'owner-gone');
  const pending = ownersFromPods([{ metadata: { namespace: 'ns', name: 'web-0' }, status: {} }], ['n1']);
  assert.equal((await plan(ipam, pending, new Map(), 0)).candidates.length, 0, 'a pod without an IP yet keeps its address');
});
