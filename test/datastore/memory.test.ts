import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryDatastore } from '../../datastore/memory.js';
import { ConflictError, NotFoundError } from '../../datastore/types.js';
import { datastoreContract, pool } from './contract.js';

datastoreContract('memory', async () => {
  const ds = new MemoryDatastore();
  return {
    ds,
    writer: ds,
    faults: {
      cutWatches: async () => ds.suspendWatches(),
      restoreWatches: async () => ds.resumeWatches(),
      compact: async () => ds.compact(),
    },
    cleanup: () => ds.close(),
  };
});

test('memory: injected faults fail the next N matching operations, then stop', async () => {
  const ds = new MemoryDatastore();
  const v1 = await ds.create(pool('f', '10.0.0.0/16'));
  ds.injectFault({ op: 'update', kind: 'ippool', count: 2 });
  await assert.rejects(ds.update(v1), ConflictError);
  await assert.rejects(ds.update(v1), ConflictError);
  const v2 = await ds.update(v1);
  assert.notEqual(v2.metadata.resourceVersion, v1.metadata.resourceVersion);
  ds.injectFault({ op: 'get', kind: 'BGPPeer', error: (k, n) => new NotFoundError(k, n) });
  assert.equal((await ds.get('IPPool', 'f')).metadata.name, 'f'); // other kinds unaffected
  await assert.rejects(ds.get('BGPPeer', 'x'), NotFoundError);
});

test('memory: watch from a compacted revision relists', async () => {
  const ds = new MemoryDatastore({ historyLimit: 1 });
  await ds.create(pool('a', '10.0.0.0/16'));
  const r = await ds.list('IPPool');
  await ds.create(pool('b', '10.1.0.0/16'));
  await ds.create(pool('c', '10.2.0.0/16'));
  await ds.create(pool('d', '10.3.0.0/16'));
  const evs: string[] = [];
  const w = ds.watch('IPPool', { revision: r.revision }, (e) => evs.push(e.type === 'SYNCED' || e.type === 'ERROR' ? e.type : `${e.type} ${e.object.metadata.name}`));
  for (let i = 0; i < 50 && !evs.includes('SYNCED'); i++) await new Promise((res) => setTimeout(res, 5));
  await w.stop();
  assert.deepEqual(evs, ['ADDED b', 'ADDED c', 'ADDED d', 'SYNCED']);
});
