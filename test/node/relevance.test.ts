/** node/relevance.ts: which datastore changes can touch a node's BGP plan or dataplane view. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockProjection, recomputeFor } from '../../node/relevance.js';
import type { BlockAffinity, IPAMBlock, IPPool, WorkloadEndpoint } from '../../api/types.js';

const block = (affinity: string, allocs: Array<[number, string]> = [], deleted = false): IPAMBlock => {
  const allocations: Array<number | null> = Array.from({ length: 64 }, () => null);
  const attributes = allocs.map(([ord, node], k) => {
    allocations[ord] = k;
    return { handle_id: `h${ord}`, secondary: { node } };
  });
  return { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMBlock', metadata: { name: 'b' }, spec: { cidr: '10.244.3.0/26', affinity, strictAffinity: false, allocations, unallocated: [], attributes, ...(deleted ? { deleted: true } : {}) } };
};
const wep = (node: string): WorkloadEndpoint => ({ apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name: 'w', namespace: 'default' }, spec: { node, interfaceName: 'cali1', ipNetworks: ['10.244.3.9/32'] } });
const aff = (node: string): BlockAffinity => ({ apiVersion: 'projectcalico.org/v3', kind: 'BlockAffinity', metadata: { name: 'a' }, spec: { cidr: '10.244.3.0/26', node, state: 'confirmed', deleted: 'false' } });

test('workload endpoints and affinities: only this node’s (added, changed, moved or deleted)', () => {
  assert.equal(recomputeFor('a', 'WorkloadEndpoint', undefined, wep('b')), undefined);
  assert.equal(recomputeFor('a', 'WorkloadEndpoint', wep('b'), undefined), undefined);
  assert.equal(recomputeFor('a', 'WorkloadEndpoint', undefined, wep('a')), 'dataplane');
  assert.equal(recomputeFor('a', 'WorkloadEndpoint', wep('a'), wep('b')), 'dataplane', 'moved away');
  assert.equal(recomputeFor('a', 'BlockAffinity', undefined, aff('b')), undefined);
  assert.equal(recomputeFor('a', 'BlockAffinity', aff('a'), undefined), 'plan');
});

test('blocks: cidr, affinity and deletion always count; allocations only when this node borrowed from another node’s block', () => {
  const other = block('host:b');
  assert.equal(recomputeFor('a', 'IPAMBlock', undefined, other), 'plan', 'a new block is a new remote route');
  assert.equal(recomputeFor('a', 'IPAMBlock', other, block('host:b', [[9, 'b']])), undefined, "node b's own pod");
  assert.equal(recomputeFor('a', 'IPAMBlock', other, block('host:b', [[9, 'c']])), undefined, 'borrowed by node c');
  assert.equal(recomputeFor('a', 'IPAMBlock', other, block('host:b', [[9, 'a']])), 'plan', 'borrowed by this node: exported /32');
  assert.equal(recomputeFor('a', 'IPAMBlock', block('host:b', [[9, 'a']]), block('host:b', [[9, 'a'], [10, 'b']])), undefined);
  assert.equal(recomputeFor('a', 'IPAMBlock', other, block('host:c')), 'plan', 'affinity moved');
  assert.equal(recomputeFor('a', 'IPAMBlock', other, block('host:b', [], true)), 'plan', 'deleted');
  assert.equal(recomputeFor('a', 'IPAMBlock', other, undefined), 'plan');
  // This node's own block: its allocations are its own pods (routes come from its workload endpoints).
  assert.equal(recomputeFor('a', 'IPAMBlock', block('host:a'), block('host:a', [[9, 'a']])), undefined);
  assert.equal(blockProjection('a', undefined), '');
});

test('every other kind is always recomputed', () => {
  const pool: IPPool = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.244.0.0/16' } };
  for (const kind of ['Node', 'BGPPeer', 'BGPConfiguration', 'BGPFilter', 'IPPool']) assert.equal(recomputeFor('a', kind, undefined, pool), 'plan', kind);
});
