/** Blocks written by Calico itself (fixtures from the api tests) work with our block logic. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IPAMBlock } from '../../api/types.js';
import { AllocationBlock } from '../../ipam/block.js';
import { nextSequence } from '../../ipam/rw.js';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../api/fixtures/${name}`, import.meta.url), 'utf8')) as IPAMBlock;

test('a Calico IPAMBlock: owners, last ordinal, ABA guard with UnixNano sequence numbers, FIFO', () => {
  const obj = fixture('ipamblock.json');
  const b = new AllocationBlock(obj.spec);
  assert.equal(b.hostAffinity(), 'node-1');
  assert.equal(b.inUse(), 3);
  assert.equal(b.attributeOf(0)?.handle_id, 'ipip-tunnel-addr-node-1');
  assert.equal(b.attributeOf(63)?.secondary?.pod, 'coredns-5d78c9869d-abcde');
  const seq63 = obj.spec.sequenceNumberForAllocation!['63']!;
  assert.throws(() => b.release([{ ip: '10.244.1.63', sequenceNumber: nextSequence(seq63) }]), /re-allocated/);
  const r = b.release([{ ip: '10.244.1.63', sequenceNumber: seq63 }]);
  assert.deepEqual([...r.byHandle], [['k8s-pod-network.a1b2c3d4e5f6', 1]]);
  assert.equal(b.spec.attributes.length, 2, 'attribute of the released address dropped');
  assert.equal(b.spec.unallocated.at(-1), 63, 'released ordinal goes to the FIFO tail');
  assert.equal(b.autoAssign(1, 'x', null)[0], `10.244.1.${obj.spec.unallocated[0]}`);
});

test('sequence numbers keep changing beyond 2^53', () => {
  const n = 1763632934500000000;
  assert.notEqual(nextSequence(n), n);
  assert.ok(nextSequence(n) > n);
  assert.equal(nextSequence(41), 42);
});

test('an unaffine IPv6 Calico block', () => {
  const b = new AllocationBlock(fixture('ipamblock-v6-unaffine.json').spec);
  assert.equal(b.family, 6);
  assert.equal(b.hostAffinity(), undefined);
});
