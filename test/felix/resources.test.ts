import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inputsFromResources } from '../../felix/resources.js';
import type { BlockAffinity, IPAMBlock, IPPool, Node, WorkloadEndpoint } from '../../api/types.js';

const node = (name: string, ip: string, vxlan?: string): Node => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'Node',
  metadata: { name },
  spec: { bgp: { ipv4Address: ip }, ...(vxlan ? { ipv4VXLANTunnelAddr: vxlan } : {}) },
});
const block = (cidr: string, host: string | null): IPAMBlock => ({
  apiVersion: 'crd.projectcalico.org/v1',
  kind: 'IPAMBlock',
  metadata: { name: cidr.replace(/[./]/g, '-') },
  spec: { cidr, affinity: host === null ? null : `host:${host}`, allocations: [], unallocated: [], attributes: [], strictAffinity: false },
});
const aff = (cidr: string, n: string, state: BlockAffinity['spec']['state'], deleted = 'false'): BlockAffinity => ({
  apiVersion: 'crd.projectcalico.org/v1',
  kind: 'BlockAffinity',
  metadata: { name: `${n}-${cidr}` },
  spec: { cidr, node: n, state, deleted },
});
const wep = (n: string, iface: string, ip: string): WorkloadEndpoint => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'WorkloadEndpoint',
  metadata: { name: `${n}-k8s-pod-${iface}`, namespace: 'default' },
  spec: { node: n, interfaceName: iface, ipNetworks: [ip] },
});
const pool: IPPool = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.244.0.0/16', vxlanMode: 'Always', natOutgoing: true } };

test('resources → inputs: confirmed local blocks, remote blocks, borrowed /32s, local workloads, BGP next hops', () => {
  const i = inputsFromResources({
    nodeName: 'n1',
    parentIface: 'eth0',
    nodes: [node('n1', '10.0.0.1/24', '10.244.1.0'), node('n2', '10.0.0.2/24'), node('n3', '10.0.0.3/24')],
    pools: [pool],
    blocks: [block('10.244.1.0/26', 'n1'), block('10.244.2.0/26', 'n2'), block('10.244.3.0/26', 'n3'), block('10.244.9.0/26', null)],
    affinities: [aff('10.244.1.0/26', 'n1', 'confirmed'), aff('10.244.5.0/26', 'n1', 'pending'), aff('10.244.6.0/26', 'n1', 'confirmed', 'true'), aff('10.244.7.0/26', 'n1', ''), aff('10.244.2.0/26', 'n2', 'confirmed')],
    workloadEndpoints: [wep('n1', 'cali1', '10.244.1.5/32'), wep('n3', 'cali3', '10.244.2.7/32'), wep('n2', 'cali2', '10.244.2.8/32')],
    bgpRoutes: [{ cidr: '10.244.3.0/26', nextHop: '10.0.0.33' }, { cidr: '10.250.0.0/26', nextHop: '10.0.0.2' }, { cidr: '10.244.1.0/26', nextHop: '10.0.0.1' }],
  });
  assert.deepEqual(i.self, { name: 'n1', ipv4Address: '10.0.0.1/24', ipv4VXLANTunnelAddr: '10.244.1.0' });
  assert.equal(i.parentIface, 'eth0');
  assert.deepEqual(i.localBlocks, ['10.244.1.0/26', '10.244.7.0/26']);
  assert.deepEqual(i.workloads, [{ iface: 'cali1', ipNetworks: ['10.244.1.5/32'] }]);
  assert.deepEqual(i.remoteBlocks, [
    { cidr: '10.244.2.0/26', node: 'n2' },
    { cidr: '10.244.3.0/26', node: 'n3', nextHop: '10.0.0.33' },
    { cidr: '10.244.2.7/32', node: 'n3' },
    { cidr: '10.250.0.0/26', nextHop: '10.0.0.2', node: 'n2' },
  ]);
  assert.deepEqual(i.pools, [{ cidr: '10.244.0.0/16', vxlanMode: 'Always', natOutgoing: true }]);
});
