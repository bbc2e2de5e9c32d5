/**
 * The allocator on stores with atomic commits (handle + block in one commit, host cache validated
 * by the commit) and its sequential path (what the kubernetes backend uses): memory datastore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPAMHandle, IPPool } from '../../api/types.js';
import { MemoryDatastore } from '../../datastore/memory.js';
import type { CommitOp, CommitResult, Datastore } from '../../datastore/types.js';
import { isIpamError } from '../../ipam/errors.js';
import { Ipam } from '../../ipam/ipam.js';
import { checkIpam, loadSnapshot, releaseFromReport } from '../../ipam/report.js';
import { addNode, addPool } from './fixtures.js';

/** Counts what the allocator asks of the store. */
function counting(inner: MemoryDatastore): { ds: Datastore; calls: string[] } {
  const calls: string[] = [];
  const ds: Datastore = {
    type: inner.type,
    get: (k, n, ns) => (calls.push(`get ${k}`), inner.get(k, n, ns)),
    list: (k, o) => (calls.push(`list ${k}`), inner.list(k, o)),
    create: (o) => (calls.push(`create ${o.kind}`), inner.create(o)),
    update: (o) => (calls.push(`update ${o.kind}`), inner.update(o)),
    delete: (k, n, o) => (calls.push(`delete ${k}`), inner.delete(k, n, o)),
    watch: (k, o, f) => inner.watch(k, o, f),
    commit: (ops: readonly CommitOp[]): Promise<CommitResult> => (calls.push(`commit ${ops.map((o) => o.op).join(',')}`), inner.commit(ops)),
    close: () => inner.close(),
  };
  return { ds, calls };
}

const handles = async (ds: Datastore) => (await ds.list<IPAMHandle>('IPAMHandle')).items;

test('atomic: steady-state allocation from an affine block reads nothing and commits once (block + handle + checks)', async () => {
  const mem = new MemoryDatastore();
  await addPool(mem, 'p4', { cidr: '10.50.0.0/24' });
  await addPool(mem, 'p6', { cidr: 'fd00:50::/120' });
  const { ds, calls } = counting(mem);
  const ipam = new Ipam({ datastore: ds });
  await ipam.autoAssign({ num4: 1, num6: 1, handleId: 'h0', hostname: 'n1' }); // claims blocks, reads
  await ipam.autoAssign({ num4: 1, num6: 1, handleId: 'h1', hostname: 'n1' }); // refreshes the cache
  calls.length = 0;
  const r = await ipam.autoAssign({ num4: 1, num6: 1, handleId: 'h2', hostname: 'n1' });
  assert.deepEqual(calls, ['commit update,update,create,check,check,check'], 'dual stack: both blocks, the handle, 2 pools + Node');
  assert.equal(r.ipv4.length + r.ipv6.length, 2);
  const h = (await handles(mem)).find((x) => x.spec.handleID === 'h2')!;
  assert.deepEqual(h.spec.block, { [r.ipv4[0]!.block]: 1, [r.ipv6[0]!.block]: 1 });
  const snap = await loadSnapshot(mem);
  assert.equal(checkIpam(snap, { handles: new Set(['h0', 'h1', 'h2']), nodes: new Set(['n1']) }).summary.problems, 0);
  // release by handle: per block one commit of the block and the handle's count (handle deleted with the last)
  calls.length = 0;
  assert.equal(await ipam.releaseByHandle('h2', 'n1'), 2);
  assert.deepEqual(calls.filter((c) => c.startsWith('commit')), ['commit update,update', 'commit update,delete']);
  assert.equal(calls.filter((c) => !c.startsWith('commit') && !c.startsWith('get')).length, 0, 'no single-object writes');
  assert.deepEqual((await handles(mem)).map((h) => h.spec.handleID).sort(), ['h0', 'h1']);
  const after = checkIpam(await loadSnapshot(mem), { handles: new Set(['h0', 'h1']), nodes: new Set(['n1']) });
  assert.equal(after.summary.problems, 0, JSON.stringify(after));
});

test('atomic: the afterHandleWrite moment does not exist; a lost block CAS leaves no handle', async () => {
  const ds = new MemoryDatastore();
  await addPool(ds, 'p', { cidr: '10.51.0.0/24' });
  let seam = 0;
  const ipam = new Ipam({ datastore: ds, retries: 3, afterHandleWrite: () => void seam++ });
  await ipam.autoAssign({ num4: 1, handleId: 'h0', hostname: 'n1' });
  ds.injectFault({ op: 'update', kind: 'IPAMBlock', count: 10 });
  await assert.rejects(ipam.autoAssign({ num4: 1, handleId: 'h1', hostname: 'n1' }), (e) => isIpamError(e, 'RetriesExhausted'));
  assert.equal(seam, 0);
  assert.deepEqual((await handles(ds)).map((h) => h.spec.handleID), ['h0']);
});

test('atomic: a stale cache never allocates wrongly (pool disabled, node relabelled, block changed by another process)', async () => {
  const ds = new MemoryDatastore();
  await addPool(ds, 'a', { cidr: '10.52.0.0/24', nodeSelector: "zone == 'x'" });
  await addPool(ds, 'b', { cidr: '10.53.0.0/24' });
  await addNode(ds, 'n1', { zone: 'x' });
  const one = new Ipam({ datastore: ds });
  const two = new Ipam({ datastore: ds }); // another process on the same node
  const first = await one.autoAssign({ num4: 1, handleId: 'h0', hostname: 'n1', ipv4Pools: ['a'] });
  await one.autoAssign({ num4: 1, handleId: 'h1', hostname: 'n1', ipv4Pools: ['a'] }); // cache warm
  // another process allocates from the same block: the cached block is stale → CAS → fresh read
  const other = await two.autoAssign({ num4: 1, handleId: 'h2', hostname: 'n1', ipv4Pools: ['a'] });
  const next = await one.autoAssign({ num4: 1, handleId: 'h3', hostname: 'n1', ipv4Pools: ['a'] });
  assert.notEqual(next.ipv4[0]!.ip, other.ipv4[0]!.ip);
  assert.equal(next.ipv4[0]!.block, first.ipv4[0]!.block);
  // the node loses the label that pool a selects: no more addresses from a without a request for it
  await one.autoAssign({ num4: 1, handleId: 'h4', hostname: 'n1' }); // cache warm, from pool a (selector matches)
  const node = await ds.get('Node', 'n1');
  await ds.update({ ...node, metadata: { ...node.metadata, labels: { zone: 'y' } } });
  const r = await one.autoAssign({ num4: 1, handleId: 'h5', hostname: 'n1' });
  assert.ok(r.ipv4[0]!.ip.startsWith('10.53.0.'), `after relabel got ${r.ipv4[0]!.ip}`);
  // pool b disabled after the cache saw it enabled: no allocation from b any more
  await one.autoAssign({ num4: 1, handleId: 'h6', hostname: 'n1' });
  const b = await ds.get<IPPool>('IPPool', 'b');
  await ds.update({ ...b, spec: { ...b.spec, disabled: true } });
  await assert.rejects(one.autoAssign({ num4: 1, handleId: 'h7', hostname: 'n1' }), (e) => isIpamError(e, 'NoPools'));
  const all = (await loadSnapshot(ds)).blocks.flatMap((blk) => blk.spec.allocations.filter((x) => x !== null));
  assert.equal(all.length, 7, 'h0..h6 hold one address each');
});

test('sequential path (kubernetes backend): killed between handle and block write → check reports the leak, release repairs it', async () => {
  const ds = new MemoryDatastore();
  await addPool(ds, 'p', { cidr: '10.54.0.0/24' });
  const crashed = new Error('process killed');
  const ipam = new Ipam({
    datastore: ds,
    atomicWrites: false,
    afterHandleWrite: () => {
      throw crashed;
    },
  });
  await assert.rejects(ipam.autoAssign({ num4: 1, handleId: 'doomed', hostname: 'n1' }), (e) => e === crashed);
  const report = checkIpam(await loadSnapshot(ds), { handles: new Set(), nodes: new Set(['n1']) });
  assert.deepEqual(report.handlesWithoutIps.map((h) => h.handleID), ['doomed']);
  const fixed = await releaseFromReport(new Ipam({ datastore: ds }), JSON.parse(JSON.stringify(report)) as typeof report);
  assert.deepEqual(fixed.handlesRepaired, ['doomed']);
  assert.equal((await handles(ds)).length, 0);
});

test('a store without commit (kubernetes) takes the sequential path: handle create, then block update', async () => {
  const mem = new MemoryDatastore();
  await addPool(mem, 'p', { cidr: '10.55.0.0/24' });
  const { ds, calls } = counting(mem);
  delete (ds as Partial<Datastore>).commit;
  const ipam = new Ipam({ datastore: ds });
  await ipam.autoAssign({ num4: 1, handleId: 'h0', hostname: 'n1' });
  calls.length = 0;
  await ipam.autoAssign({ num4: 1, handleId: 'h1', hostname: 'n1' });
  const writes = calls.filter((c) => !c.startsWith('get') && !c.startsWith('list'));
  assert.deepEqual(writes, ['create IPAMHandle', 'update IPAMBlock']);
  assert.ok(calls.some((c) => c.startsWith('list')), 'no cache without commit: reads every time');
});
