import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SmallMap } from '../../../bgp/rib/small-map.js';

test('SmallMap behaves like Map under random set/delete sequences', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 4 }), fc.integer())), (ops) => {
      const m = new Map<number, number>();
      const s = new SmallMap<number, number>();
      for (const [isSet, k, v] of ops) {
        if (isSet) {
          m.set(k, v);
          s.set(k, v);
        } else assert.equal(s.delete(k), m.delete(k));
        assert.equal(s.size, m.size);
        for (let q = 0; q <= 4; q++) {
          assert.equal(s.get(q), m.get(q));
          assert.equal(s.has(q), m.has(q));
        }
        assert.deepEqual([...s].sort(), [...m].sort());
        assert.deepEqual([...s.values()].sort(), [...m.values()].sort());
      }
    }),
    { numRuns: 500 },
  );
});
