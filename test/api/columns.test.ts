import { test } from 'node:test';
import assert from 'node:assert/strict';
import { columnsFor, tableRows, validateResource, type Resource } from '../../api/index.js';

const V3 = 'projectcalico.org/v3';

test('ippool columns as calicoctl (default and wide)', () => {
  const p = validateResource({ apiVersion: V3, kind: 'IPPool', metadata: { name: 'default-ipv4-ippool' }, spec: { cidr: '192.168.0.0/16', ipipMode: 'Always', natOutgoing: true } });
  assert.deepEqual(tableRows('IPPool', [p], false), [
    ['NAME', 'CIDR', 'SELECTOR'],
    ['default-ipv4-ippool', '192.168.0.0/16', 'all()'],
  ]);
  assert.deepEqual(tableRows('IPPool', [p], true), [
    ['NAME', 'CIDR', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR'],
    ['default-ipv4-ippool', '192.168.0.0/16', 'true', 'Always', 'Never', 'false', 'false', 'all()'],
  ]);
});

test('bgppeer NODE column and node ASN inheritance', () => {
  const peers: Resource[] = [
    { apiVersion: V3, kind: 'BGPPeer', metadata: { name: 'g' }, spec: { peerIP: '10.0.0.1', asNumber: 65000 } },
    { apiVersion: V3, kind: 'BGPPeer', metadata: { name: 'n' }, spec: { peerIP: '10.0.0.2', asNumber: 65001, node: 'node-1' } },
    { apiVersion: V3, kind: 'BGPPeer', metadata: { name: 's' }, spec: { peerSelector: 'has(rr)', nodeSelector: '!has(rr)' } },
  ];
  assert.deepEqual(tableRows('BGPPeer', peers, false).map((r) => r[2]), ['NODE', '(global)', 'node-1', '!has(rr)']);
  const nodes: Resource[] = [
    { apiVersion: V3, kind: 'Node', metadata: { name: 'a' }, spec: { bgp: { ipv4Address: '10.0.0.5/24' } } },
    { apiVersion: V3, kind: 'Node', metadata: { name: 'b' }, spec: { bgp: { ipv4Address: '10.0.0.6/24', asNumber: 65010, ipv6Address: 'fd00::6/64' } } },
  ];
  assert.deepEqual(tableRows('Node', nodes, true, { defaultASNumber: 64512 }), [
    ['NAME', 'ASN', 'IPV4', 'IPV6'],
    ['a', '(64512)', '10.0.0.5/24', ''],
    ['b', '65010', '10.0.0.6/24', 'fd00::6/64'],
  ]);
  assert.deepEqual(tableRows('Node', nodes, false), [['NAME'], ['a'], ['b']]);
});

test('other column sets', () => {
  const headers = (k: string, wide: boolean) => columnsFor(k)[wide ? 'wide' : 'default'].map((c) => c.header);
  assert.deepEqual(headers('BGPConfiguration', false), ['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER']);
  assert.deepEqual(headers('IPAMConfiguration', true), ['NAME', 'STRICTAFFINITY', 'AUTOALLOCATEBLOCKS', 'MAXBLOCKSPERHOST']);
  assert.deepEqual(headers('WorkloadEndpoint', false), ['WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE']);
  assert.deepEqual(headers('WorkloadEndpoint', true), ['NAME', 'WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE', 'PROFILES', 'NATS']);
  assert.deepEqual(headers('FelixConfiguration', true), ['NAME']);
  const wep = validateResource({ apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { name: 'w' }, spec: { pod: 'nginx', node: 'n1', ipNetworks: ['10.244.1.5/32', 'fd00::5/128'], interfaceName: 'cali1', profiles: ['kns.default', 'ksa.default.default'] } });
  assert.deepEqual(tableRows('WorkloadEndpoint', [wep], true)[1], ['w', 'nginx', 'n1', '10.244.1.5/32,fd00::5/128', 'cali1', 'kns.default,ksa.default.default', '']);
});
