import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AllocationBlock, newBlockSpec } from '../../ipam/block.js';
import { blockCount, formatCidr, parseCidr, parseIp, formatIp, enclosingCidr } from '../../ipam/cidr.js';
import { blockOrder, fnv1a32, seededShuffle } from '../../ipam/order.js';
import { affinityName, blockName, handleObjectName } from '../../api/names.js';
import { isIpamError } from '../../ipam/errors.js';

const fresh = (cidr = '10.244.1.0/26') => new AllocationBlock(newBlockSpec(parseCidr(cidr), 'host:n1', null, 100));

test('cidr: parse/format round trip for v4 and v6, host bits rejected', () => {
  assert.equal(formatCidr(parseCidr('10.244.1.0/26')), '10.244.1.0/26');
  assert.equal(formatCidr(parseCidr('fd00:1::/122')), 'fd00:1::/122');
  assert.throws(() => parseCidr('10.244.1.1/26'), (e) => isIpamError(e, 'InvalidCidr'));
  assert.throws(() => parseIp('10.0.0.300'), (e) => isIpamError(e, 'InvalidAddress'));
  assert.equal(formatCidr(enclosingCidr(4, parseIp('10.244.1.77').value, 26)), '10.244.1.64/26');
  assert.equal(formatIp(6, parseIp('FD00::0001').value), 'fd00::1');
  assert.equal(blockCount(parseCidr('fd00::/48'), 122), 1n << 74n);
});

test('names: Calico block, affinity and handle names', () => {
  assert.equal(blockName('10.244.1.0/26'), '10-244-1-0-26');
  assert.equal(affinityName('node-15.company.com', '10.148.158.64/26'), 'node-15.company.com-10-148-158-64-26');
  const long = affinityName('h'.repeat(300), '10.0.0.0/26');
  assert.ok(long.length <= 253 && long.includes('-10-0-0-0-26-'));
  assert.equal(handleObjectName('k8s-pod-network.ABC'), 'k8s-pod-network.abc');
});

test('block: ordinal 0 first, FIFO order, last ordinal assignable, exhaustion', () => {
  const b = fresh();
  const ips = b.autoAssign(64, 'h1', { pod: 'p' });
  assert.equal(ips.length, 64);
  assert.equal(ips[0], '10.244.1.0');
  assert.equal(ips[63], '10.244.1.63');
  assert.equal(b.numFree(), 0);
  assert.deepEqual(b.autoAssign(1, 'h2', null), []);
  assert.equal(b.spec.attributes.length, 1, 'one attribute shared by all of h1');
});

test('block: release appends to FIFO tail; attributes compacted and renumbered', () => {
  const b = fresh();
  b.autoAssign(2, 'a', null);
  b.autoAssign(2, 'b', null);
  assert.deepEqual(b.spec.allocations.slice(0, 4), [0, 0, 1, 1]);
  const r = b.release([{ ip: '10.244.1.0' }, { ip: '10.244.1.1' }, { ip: '10.244.1.9' }]);
  assert.deepEqual([...r.byHandle], [['a', 2]]);
  assert.deepEqual(r.notAllocated, [9]);
  assert.deepEqual(b.spec.attributes, [{ handle_id: 'b' }]);
  assert.deepEqual(b.spec.allocations.slice(0, 4), [null, null, 0, 0]);
  assert.deepEqual(b.spec.unallocated.slice(-2), [0, 1]);
  assert.equal(b.autoAssign(1, 'c', null)[0], '10.244.1.4', 'next allocation comes from the FIFO head');
});

test('block: sequence number guard rejects ABA release and changes nothing', () => {
  const b = fresh();
  b.spec.sequenceNumber = 7;
  b.autoAssign(1, 'a', null);
  assert.equal(b.spec.sequenceNumberForAllocation!['0'], 7);
  assert.throws(() => b.release([{ ip: '10.244.1.0', sequenceNumber: 6 }]), (e) => isIpamError(e, 'BadSequenceNumber'));
  assert.equal(b.inUse(), 1);
  b.release([{ ip: '10.244.1.0', sequenceNumber: 7 }]);
  assert.equal(b.inUse(), 0);
  assert.deepEqual(b.spec.sequenceNumberForAllocation, {});
});

test('block: assign specific address, including the last ordinal; double assign fails', () => {
  const b = fresh();
  b.assign('10.244.1.63', 'h', null);
  assert.equal(b.spec.unallocated.includes(63), false);
  assert.throws(() => b.assign('10.244.1.63', 'x', null), (e) => isIpamError(e, 'AlreadyAssigned'));
  assert.throws(() => b.assign('10.244.2.1', 'x', null), (e) => isIpamError(e, 'InvalidArgument'));
  assert.equal(b.releaseHandle('h'), 1);
  assert.ok(b.isEmpty());
});

test('block: the constructor copies; the input spec is never mutated', () => {
  const spec = newBlockSpec(parseCidr('10.0.0.0/30'), null, null, 1);
  const before = structuredClone(spec);
  new AllocationBlock(spec).autoAssign(2, 'h', null);
  assert.deepEqual(spec, before);
});

test('block: ipv6 /122 allocation', () => {
  const b = fresh('fd00:10::/122');
  assert.deepEqual(b.autoAssign(2, 'h', null), ['fd00:10::', 'fd00:10::1']);
});

test('property: any sequence of assign/release keeps the block consistent', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 3 })), { maxLength: 60 }), (ops) => {
      const b = fresh('10.0.0.0/28');
      const live = new Map<string, string>();
      for (const [alloc, n, h] of ops) {
        if (alloc) for (const ip of b.autoAssign(n, `h${h}`, null)) {
          assert.equal(live.has(ip), false, 'no address handed out twice');
          live.set(ip, `h${h}`);
        } else {
          const n0 = b.releaseHandle(`h${h}`);
          const mine = [...live].filter(([, x]) => x === `h${h}`);
          assert.equal(n0, mine.length);
          for (const [ip] of mine) live.delete(ip);
        }
        assert.equal(b.inUse() + b.numFree(), 16);
        assert.equal(new Set(b.spec.unallocated).size, b.spec.unallocated.length);
        for (const a of b.spec.allocations) if (a !== null) assert.ok(a < b.spec.attributes.length);
      }
    }),
  );
});

test('order: hostname-seeded start, stable per host, visits every block once', () => {
  const pool = parseCidr('10.0.0.0/22');
  const a = [...blockOrder(pool, 26, 'node-a')].map(formatCidr);
  const a2 = [...blockOrder(pool, 26, 'node-a')].map(formatCidr);
  const b = [...blockOrder(pool, 26, 'node-b')].map(formatCidr);
  assert.deepEqual(a, a2);
  assert.equal(new Set(a).size, 16);
  assert.notEqual(a[0], b[0]);
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.deepEqual(seededShuffle([1, 2, 3, 4], 'x').sort(), [1, 2, 3, 4]);
  const v6 = blockOrder(parseCidr('fd00::/48'), 122, 'n');
  assert.match(formatCidr(v6.next().value!), /^fd00:0?:?.*\/122$/);
});
