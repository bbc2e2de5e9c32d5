import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withFaults } from '../../datastore/faults.js';
import { MemoryDatastore } from '../../datastore/memory.js';
import { ConflictError, UnavailableError } from '../../datastore/types.js';
import { pool } from './contract.js';

test('withFaults: a ConflictError storm on one kind, then normal service', async () => {
  const ds = withFaults(new MemoryDatastore());
  const v1 = await ds.create(pool('p', '10.0.0.0/16'));
  ds.injectFault({ op: 'update', kind: 'ippools', count: 3 });
  let conflicts = 0;
  let cur = v1;
  for (;;) {
    try {
      cur = await ds.update({ ...cur, metadata: { ...cur.metadata, labels: { done: 'yes' } } });
      break;
    } catch (err) {
      assert.ok(err instanceof ConflictError);
      conflicts++;
      cur = await ds.get('IPPool', 'p');
    }
  }
  assert.equal(conflicts, 3);
  assert.equal(ds.faults.hits, 3);
  assert.equal(ds.faults.pending, 0);
  assert.deepEqual((await ds.get('IPPool', 'p')).metadata.labels, { done: 'yes' });
});

test('withFaults: a before-hook makes a concurrent writer win the CAS for real', async () => {
  const ds = withFaults(new MemoryDatastore());
  const v1 = await ds.create(pool('q', '10.1.0.0/16'));
  ds.injectFault({
    op: 'update',
    name: 'q',
    before: async () => {
      const now = await ds.inner.get('IPPool', 'q');
      await ds.inner.update({ ...now, metadata: { ...now.metadata, labels: { by: 'other' } } });
    },
  });
  await assert.rejects(ds.update({ ...v1, metadata: { ...v1.metadata, labels: { by: 'me' } } }), ConflictError);
  assert.deepEqual((await ds.get('IPPool', 'q')).metadata.labels, { by: 'other' });
});

test('withFaults: reads fail as Unavailable by default, filters by kind and name', async () => {
  const ds = withFaults(new MemoryDatastore());
  await ds.create(pool('r', '10.2.0.0/16'));
  ds.injectFault({ op: 'get', kind: 'BGPPeer' });
  ds.injectFault({ op: 'list', count: 2 });
  assert.equal((await ds.get('IPPool', 'r')).metadata.name, 'r');
  await assert.rejects(ds.list('IPPool'), UnavailableError);
  await assert.rejects(ds.list('BGPPeer'), UnavailableError);
  assert.equal((await ds.list('IPPool')).items.length, 1);
  await assert.rejects(ds.get('BGPPeer', 'x'), UnavailableError);
  ds.injectFault({ op: 'delete' });
  ds.clearFaults();
  await ds.delete('IPPool', 'r');
});

test('withFaults: commit ops meet the faults of their single-object counterparts; a store without commit stays without', async () => {
  const mem = new MemoryDatastore();
  const ds = withFaults(mem);
  const a = await ds.create(pool('a', '10.0.0.0/16'));
  ds.injectFault({ op: 'update', kind: 'IPPool', name: 'a' });
  const ops = [
    { op: 'create' as const, object: pool('b', '10.1.0.0/16') },
    { op: 'update' as const, object: { ...a, metadata: { ...a.metadata, labels: { x: 'y' } } } },
  ];
  await assert.rejects(ds.commit!(ops), (e: unknown) => e instanceof ConflictError && e.opIndex === 1);
  assert.deepEqual((await ds.list('IPPool')).items.map((o) => o.metadata.name), ['a'], 'nothing written');
  const res = await ds.commit!(ops);
  assert.equal(res.objects[1]!.metadata.labels?.x, 'y');
  const noCommit = { ...mem, commit: undefined } as unknown as MemoryDatastore;
  assert.equal(withFaults(noCommit).commit, undefined);
});
