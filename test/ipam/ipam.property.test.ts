/**
 * Property test: random interleavings of allocations and releases on several hosts (memory
 * datastore, small pool so borrowing and exhaustion happen) keep IPAM consistent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryDatastore } from '../../datastore/memory.js';
import { Ipam } from '../../ipam/ipam.js';
import { isIpamError } from '../../ipam/errors.js';
import { checkIpam, loadSnapshot } from '../../ipam/report.js';
import { addPool } from './fixtures.js';

type Op = { kind: 'alloc'; host: number; n4: number; n6: number } | { kind: 'release'; pick: number; byHandle: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('alloc' as const), host: fc.integer({ min: 0, max: 2 }), n4: fc.integer({ min: 0, max: 3 }), n6: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat(), byHandle: fc.boolean() }),
);

test('property: no duplicates, handles match blocks, check clean after every batch and at the end', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { maxLength: 12 }), async (batches) => {
      const ds = new MemoryDatastore();
      await addPool(ds, 'v4', { cidr: '10.1.0.0/27', blockSize: 29 });
      await addPool(ds, 'v6', { cidr: 'fd00:1::/124', blockSize: 126 });
      const ipam = new Ipam({ datastore: ds });
      const live = new Map<string, string[]>(); // handle → ips
      let n = 0;
      for (const batch of batches) {
        // Each batch runs concurrently.
        await Promise.all(
          batch.map(async (op) => {
            if (op.kind === 'alloc') {
              if (op.n4 + op.n6 === 0) return;
              const h = `h${n++}`;
              try {
                const r = await ipam.autoAssign({ num4: op.n4, num6: op.n6, handleId: h, hostname: `host${op.host}`, attrs: { node: `host${op.host}` } });
                assert.equal(r.ipv4.length, op.n4);
                assert.equal(r.ipv6.length, op.n6);
                live.set(h, [...r.ipv4, ...r.ipv6].map((a) => a.ip));
              } catch (err) {
                if (!isIpamError(err, 'Exhausted') && !isIpamError(err, 'BlockLimit')) throw err;
              }
            } else {
              const handles = [...live.keys()];
              if (handles.length === 0) return;
              const h = handles[op.pick % handles.length]!;
              const ips = live.get(h)!;
              live.delete(h);
              if (op.byHandle) assert.equal(await ipam.releaseByHandle(h), ips.length);
              else assert.deepEqual(await ipam.releaseIps(ips), []);
            }
          }),
        );
        const all = [...live.values()].flat();
        assert.equal(new Set(all).size, all.length, 'no address twice');
        const report = checkIpam(await loadSnapshot(ds), { handles: new Set(live.keys()), nodes: new Set() });
        assert.equal(report.summary.problems, 0, JSON.stringify(report));
        assert.equal(report.summary.allocations, all.length);
      }
      for (const h of [...live.keys()]) await ipam.releaseByHandle(h);
      const end = await loadSnapshot(ds);
      assert.equal(end.handles.length, 0);
      assert.equal(checkIpam(end, { handles: new Set(), nodes: new Set() }).summary.problems, 0);
    }),
    { numRuns: 60 },
  );
});
