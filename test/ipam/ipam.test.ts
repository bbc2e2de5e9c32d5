import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDatastore } from '../../datastore/memory.js';
import { Ipam } from '../../ipam/ipam.js';
import { isIpamError } from '../../ipam/errors.js';
import type { BlockAffinity, IPAMBlock, IPAMHandle } from '../../api/types.js';
import { addNode, addPool } from './fixtures.js';

async function setup(pools: Record<string, Parameters<typeof addPool>[2]> = { p4: { cidr: '10.244.0.0/24' } }) {
  const ds = new MemoryDatastore();
  for (const [n, s] of Object.entries(pools)) await addPool(ds, n, s);
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock = { advance: (ms: number) => (now += ms) };
  const ipam = new Ipam({ datastore: ds, clock: () => now });
  return { ds, ipam, clock };
}

const blocks = async (ds: MemoryDatastore) => (await ds.list<IPAMBlock>('IPAMBlock')).items;
const affs = async (ds: MemoryDatastore) => (await ds.list<BlockAffinity>('BlockAffinity')).items;
const handles = async (ds: MemoryDatastore) => (await ds.list<IPAMHandle>('IPAMHandle')).items;

test('autoAssign claims a block two-phase, writes the handle, ordinal 0 first', async () => {
  const { ds, ipam } = await setup();
  const r = await ipam.autoAssign({ num4: 2, handleId: 'k8s-pod-network.c1', attrs: { pod: 'a', namespace: 'ns' }, hostname: 'n1' });
  assert.equal(r.ipv4.length, 2);
  const [b] = await blocks(ds);
  assert.equal(b!.spec.affinity, 'host:n1');
  assert.equal(r.ipv4[0]!.ip, b!.spec.cidr.split('/')[0]);
  assert.equal(r.ipv4[0]!.block, b!.spec.cidr);
  const [a] = await affs(ds);
  assert.equal(a!.spec.state, 'confirmed');
  assert.equal(a!.spec.node, 'n1');
  assert.equal(a!.metadata.name, `n1-${b!.metadata.name}`);
  const [h] = await handles(ds);
  assert.deepEqual(h!.spec.block, { [b!.spec.cidr]: 2 });
  assert.equal(b!.spec.attributes[0]!.secondary!.pod, 'a');
  // The next allocation reuses the affine block.
  await ipam.autoAssign({ num4: 1, handleId: 'k8s-pod-network.c2', hostname: 'n1' });
  assert.equal((await blocks(ds)).length, 1);
});

test('different hosts get different blocks with the right affinity', async () => {
  const { ds, ipam } = await setup();
  const a = await ipam.autoAssign({ num4: 1, handleId: 'ha', hostname: 'node-a' });
  const b = await ipam.autoAssign({ num4: 1, handleId: 'hb', hostname: 'node-b' });
  assert.notEqual(a.ipv4[0]!.block, b.ipv4[0]!.block);
  const bs = await blocks(ds);
  assert.equal(bs.find((x) => x.spec.cidr === a.ipv4[0]!.block)!.spec.affinity, 'host:node-a');
  assert.equal(bs.find((x) => x.spec.cidr === b.ipv4[0]!.block)!.spec.affinity, 'host:node-b');
});

test('borrowing when no block is left; strict affinity refuses with Calico text', async () => {
  const { ds, ipam } = await setup({ p: { cidr: '10.9.0.0/26' } }); // one block only
  await ipam.autoAssign({ num4: 1, handleId: 'h1', hostname: 'n1' });
  const r = await ipam.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n2' });
  assert.equal(r.ipv4[0]!.ip, '10.9.0.1', 'borrowed from n1 block');
  assert.equal((await affs(ds)).length, 1, 'borrowing does not claim affinity');
  await ipam.setConfig({ strictAffinity: true });
  await assert.rejects(ipam.autoAssign({ num4: 1, handleId: 'h3', hostname: 'n2' }), (e) => {
    return isIpamError(e, 'StrictAffinity') && e.message === 'No more free affine blocks and strict affinity enabled';
  });
  assert.equal((await handles(ds)).some((h) => h.spec.handleID === 'h3'), false, 'failed request leaves no handle');
});

test('block limit: maxBlocksPerHost gives "per host block limit"', async () => {
  const { ipam } = await setup({ p: { cidr: '10.9.0.0/24', blockSize: 30 } });
  await ipam.setConfig({ strictAffinity: true, maxBlocksPerHost: 2 });
  await ipam.autoAssign({ num4: 8, handleId: 'h1', hostname: 'n1' });
  await assert.rejects(ipam.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n1' }), (e) => isIpamError(e, 'BlockLimit') && /per host block limit/.test(e.message));
  // Per-request limit on a non-strict config: limit reached and no block to borrow from → still the limit error.
  const { ipam: i2 } = await setup({ p: { cidr: '10.9.0.0/29', blockSize: 30 } });
  await i2.autoAssign({ num4: 4, handleId: 'h1', hostname: 'n1', maxBlocksPerHost: 1 });
  await assert.rejects(i2.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n1', maxBlocksPerHost: 1 }), (e) => isIpamError(e, 'BlockLimit'));
});

test('configuration rules: maxBlocksPerHost needs strictAffinity; strict=false+autoAllocate=false rejected', async () => {
  const { ipam } = await setup();
  await assert.rejects(ipam.setConfig({ maxBlocksPerHost: 3 }), (e) => isIpamError(e, 'InvalidConfig'));
  await assert.rejects(ipam.setConfig({ autoAllocateBlocks: false }), (e) => isIpamError(e, 'InvalidConfig'));
  assert.deepEqual(await ipam.getConfig(), { strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0 });
});

test('pool nodeSelector, disabled pool and allowedUses', async () => {
  const { ds, ipam } = await setup({
    za: { cidr: '10.1.0.0/24', nodeSelector: "zone == 'a'" },
    zb: { cidr: '10.2.0.0/24', nodeSelector: "zone == 'b'" },
    off: { cidr: '10.3.0.0/24', disabled: true },
    tun: { cidr: '10.4.0.0/24', allowedUses: ['Tunnel'], nodeSelector: 'all()' },
  });
  await addNode(ds, 'na', { zone: 'a' });
  await addNode(ds, 'nb', { zone: 'b' });
  await addNode(ds, 'nc', { zone: 'c' });
  assert.match((await ipam.autoAssign({ num4: 1, handleId: 'x', hostname: 'na' })).ipv4[0]!.ip, /^10\.1\./);
  assert.match((await ipam.autoAssign({ num4: 1, handleId: 'y', hostname: 'nb' })).ipv4[0]!.ip, /^10\.2\./);
  await assert.rejects(ipam.autoAssign({ num4: 1, handleId: 'z', hostname: 'nc' }), (e) => isIpamError(e, 'NoPools'));
  const t = await ipam.autoAssign({ num4: 1, handleId: 'ipip-tunnel-addr-nc', hostname: 'nc', intendedUse: 'Tunnel', attrs: { node: 'nc', type: 'ipipTunnelAddress' } });
  assert.match(t.ipv4[0]!.ip, /^10\.4\./);
  await assert.rejects(ipam.autoAssign({ num4: 1, handleId: 'z', hostname: 'na', ipv4Pools: ['off'] }), (e) => isIpamError(e, 'PoolUnusable'));
  await assert.rejects(ipam.autoAssign({ num4: 1, handleId: 'z', hostname: 'na', ipv4Pools: ['tun'] }), (e) => isIpamError(e, 'PoolUnusable'));
  // A requested pool is used whatever its nodeSelector.
  assert.match((await ipam.autoAssign({ num4: 1, handleId: 'w', hostname: 'nc', ipv4Pools: ['10.1.0.0/24'] })).ipv4[0]!.ip, /^10\.1\./);
});

test('dual stack and IPv6; half success is rolled back', async () => {
  const { ds, ipam } = await setup({ p4: { cidr: '10.5.0.0/24' }, p6: { cidr: 'fd00:5::/120' } });
  const r = await ipam.autoAssign({ num4: 1, num6: 1, handleId: 'ds', hostname: 'n1' });
  assert.match(r.ipv4[0]!.ip, /^10\.5\.0\./);
  assert.match(r.ipv6[0]!.ip, /^fd00:5::/);
  assert.equal(r.ipv6[0]!.block.endsWith('/122'), true);
  const [h] = await handles(ds);
  assert.equal(Object.keys(h!.spec.block).length, 2);
  // IPv6 pool has 4 blocks of 64: ask for more than exists → v6 fails, v4 rolled back.
  await assert.rejects(ipam.autoAssign({ num4: 1, num6: 300, handleId: 'big', hostname: 'n1' }), (e) => isIpamError(e, 'Exhausted'));
  assert.equal((await handles(ds)).length, 1, 'handle "big" rolled back');
  const inUse = (await blocks(ds)).reduce((n, b) => n + b.spec.allocations.filter((a) => a !== null).length, 0);
  assert.equal(inUse, 2);
});

test('specific IP: assign, double assign, outside pools, last ordinal; claims the block', async () => {
  const { ds, ipam } = await setup();
  const a = await ipam.assignIp({ ip: '10.244.0.63', handleId: 'fixed', hostname: 'n1' });
  assert.equal(a.block, '10.244.0.0/26');
  assert.equal((await affs(ds))[0]!.spec.state, 'confirmed');
  await assert.rejects(ipam.assignIp({ ip: '10.244.0.63', handleId: 'other', hostname: 'n1' }), (e) => isIpamError(e, 'AlreadyAssigned'));
  await assert.rejects(ipam.assignIp({ ip: '192.168.1.1', handleId: 'other', hostname: 'n1' }), (e) => isIpamError(e, 'NotInPool'));
  assert.equal((await handles(ds)).length, 1, 'failed assigns leave no handle');
  await ipam.setConfig({ strictAffinity: true });
  await assert.rejects(ipam.assignIp({ ip: '10.244.0.5', handleId: 'n2h', hostname: 'n2' }), (e) => isIpamError(e, 'StrictAffinity'));
  assert.equal((await handles(ds)).length, 1);
});

test('release by IP and by handle; handle deleted at zero; unknown is harmless', async () => {
  const { ds, ipam } = await setup();
  const r = await ipam.autoAssign({ num4: 3, handleId: 'h', hostname: 'n1' });
  assert.deepEqual(await ipam.releaseIps([r.ipv4[0]!.ip, '10.244.0.200']), ['10.244.0.200']);
  assert.equal(Object.values((await handles(ds))[0]!.spec.block)[0], 2);
  assert.equal(await ipam.releaseByHandle('h'), 2);
  assert.equal((await handles(ds)).length, 0);
  assert.equal(await ipam.releaseByHandle('h'), 0);
  assert.deepEqual(await ipam.releaseIps(['10.99.0.1']), ['10.99.0.1']);
  const [b] = await blocks(ds);
  assert.equal(b!.spec.allocations.every((x) => x === null), true);
  assert.equal(b!.spec.affinity, 'host:n1', 'empty affine block is kept');
});

test('ABA: release with a stale sequence number is refused', async () => {
  const { ds, ipam } = await setup();
  const r = await ipam.autoAssign({ num4: 1, handleId: 'h', hostname: 'n1' });
  const [b] = await blocks(ds);
  const seq = b!.spec.sequenceNumberForAllocation!['0']!;
  await assert.rejects(ipam.releaseIps([{ ip: r.ipv4[0]!.ip, sequenceNumber: seq - 1 }]), (e) => isIpamError(e, 'BadSequenceNumber'));
  assert.deepEqual(await ipam.releaseIps([{ ip: r.ipv4[0]!.ip, sequenceNumber: seq }]), []);
});

test('affinity release goes through pendingDeletion; empty unaffine block deleted on last release', async () => {
  const { ds, ipam } = await setup();
  const r = await ipam.autoAssign({ num4: 1, handleId: 'h', hostname: 'n1' });
  const cidr = r.ipv4[0]!.block;
  const states: string[] = [];
  const w = ds.watch<BlockAffinity>('BlockAffinity', {}, (ev) => {
    if (ev.type === 'MODIFIED') states.push(ev.object.spec.state);
  });
  await new Promise((r) => setTimeout(r, 10));
  await ipam.releaseAffinity('n1', cidr);
  await new Promise((r) => setTimeout(r, 10));
  await w.stop();
  assert.ok(states.includes('pendingDeletion'));
  assert.equal((await affs(ds)).length, 0);
  const [b] = await blocks(ds);
  assert.equal(b!.spec.affinity, null, 'non-empty block kept, affinity cleared');
  await ipam.releaseByHandle('h');
  assert.equal((await blocks(ds)).length, 0, 'empty unaffine block deleted');
  // Empty affine block: release deletes block and affinity.
  await ipam.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n1' });
  await ipam.releaseByHandle('h2');
  assert.equal(await ipam.releaseHostAffinities('n1'), 1);
  assert.equal((await blocks(ds)).length + (await affs(ds)).length, 0);
});

test('reclaim of another node\'s empty block only after one minute (fake clock)', async () => {
  const { ds, ipam, clock } = await setup({ p: { cidr: '10.9.0.0/26' } });
  await ipam.setConfig({ strictAffinity: true });
  await ipam.autoAssign({ num4: 1, handleId: 'h1', hostname: 'n1' });
  await ipam.releaseByHandle('h1');
  clock.advance(30_000);
  await assert.rejects(ipam.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n2' }), (e) => isIpamError(e, 'StrictAffinity'));
  clock.advance(31_000);
  const r = await ipam.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n2' });
  assert.equal(r.ipv4[0]!.ip.startsWith('10.9.0.'), true);
  const [b] = await blocks(ds);
  assert.equal(b!.spec.affinity, 'host:n2');
  assert.deepEqual((await affs(ds)).map((a) => a.spec.node), ['n2']);
});

test('CAS conflict storm: injected conflicts are retried; beyond the bound → RetriesExhausted', async () => {
  const { ds, ipam } = await setup();
  await ipam.autoAssign({ num4: 1, handleId: 'h0', hostname: 'n1' });
  ds.injectFault({ op: 'update', kind: 'IPAMBlock', count: 40 });
  ds.injectFault({ op: 'update', kind: 'IPAMHandle', count: 10 });
  const r = await ipam.autoAssign({ num4: 2, handleId: 'h1', hostname: 'n1' });
  assert.equal(r.ipv4.length, 2);
  const h = (await handles(ds)).find((x) => x.spec.handleID === 'h1')!;
  assert.equal(Object.values(h.spec.block)[0], 2, 'handle undo on lost block CAS keeps the count exact');
  const small = new Ipam({ datastore: ds, retries: 5 });
  ds.injectFault({ op: 'update', kind: 'IPAMBlock', count: 5 });
  await assert.rejects(small.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n1' }), (e) => isIpamError(e, 'RetriesExhausted'));
  assert.equal((await handles(ds)).some((x) => x.spec.handleID === 'h2'), false);
});

test('non-conflict datastore errors surface untouched', async () => {
  const { ds, ipam } = await setup();
  const boom = new Error('disk on fire');
  ds.injectFault({ op: 'create', kind: 'BlockAffinity', error: () => boom });
  await assert.rejects(ipam.autoAssign({ num4: 1, handleId: 'h', hostname: 'n1' }), (e) => e === boom);
});

test('crash recovery: an affinity without its block gets the block; a lost claim race cleans up', async () => {
  const { ds, ipam } = await setup({ p: { cidr: '10.9.0.0/25' } });
  await ds.create({ apiVersion: 'crd.projectcalico.org/v1', kind: 'BlockAffinity', metadata: { name: 'n1-10-9-0-64-26' }, spec: { cidr: '10.9.0.64/26', node: 'n1', state: 'pending', type: 'host', deleted: 'false' } });
  const r = await ipam.autoAssign({ num4: 1, handleId: 'h', hostname: 'n1' });
  assert.equal(r.ipv4[0]!.ip, '10.9.0.64');
  assert.equal((await affs(ds))[0]!.spec.state, 'confirmed');
  // n2 races for the only other block: its block create loses → pending affinity removed, borrow instead.
  await ds.create({ apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMBlock', metadata: { name: '10-9-0-0-26' }, spec: { cidr: '10.9.0.0/26', affinity: 'host:n3', allocations: new Array(64).fill(null), unallocated: [...Array(64).keys()], attributes: [], strictAffinity: false } });
  const r2 = await ipam.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n2' });
  assert.ok(r2.ipv4[0]);
  assert.equal((await affs(ds)).some((a) => a.spec.node === 'n2'), false);
});

test('concurrent allocations on one host in one process never collide', async () => {
  const { ds, ipam } = await setup({ p: { cidr: '10.8.0.0/24' } });
  const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => ipam.autoAssign({ num4: 1, handleId: `h${i}`, hostname: i % 2 ? 'a' : 'b' })));
  const ips = rs.map((r) => r.ipv4[0]!.ip);
  assert.equal(new Set(ips).size, 40);
  assert.equal((await handles(ds)).length, 40);
});
