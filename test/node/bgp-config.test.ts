import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeBgpPlan, computeExports, hashRouterId, type BgpInputs } from '../../node/bgp-config.js';
import type { BGPPeer, BlockAffinity, IPAMBlock, IPPool, Node } from '../../api/types.js';

function node(name: string, ip: string | undefined, extra: { as?: number; rr?: string; labels?: Record<string, string> } = {}): Node {
  const bgp: NonNullable<Node['spec']>['bgp'] = {};
  if (ip) bgp.ipv4Address = `${ip}/24`;
  if (extra.as) bgp.asNumber = extra.as;
  if (extra.rr) bgp.routeReflectorClusterID = extra.rr;
  return { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name, labels: extra.labels ?? {} }, spec: { bgp } };
}
function peer(name: string, spec: BGPPeer['spec']): BGPPeer {
  return { apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name }, spec };
}
const base = (over: Partial<BgpInputs>): BgpInputs => ({ nodeName: 'a', nodes: [], peers: [], affinities: [], blocks: [], pools: [], ...over });
const nodes = [node('a', '10.0.0.2'), node('b', '10.0.0.10'), node('c', '10.0.0.1'), node('d', undefined)];

test('mesh: one peer per other node with an IP, unidirectional by string order, names as Calico', () => {
  const plan = computeBgpPlan(base({ nodes }));
  assert.equal(plan.enabled, true);
  assert.equal(plan.routerId, '10.0.0.2');
  assert.equal(plan.asNumber, 64512);
  assert.deepEqual(
    plan.peers.map((p) => [p.name, p.type, p.address, p.asNumber, p.passive ?? false]),
    [
      ['Mesh_10_0_0_1', 'node-to-node mesh', '10.0.0.1', 64512, false],
      // "10.0.0.10" > "10.0.0.2" as strings is false: Calico compares strings, so we are active here.
      ['Mesh_10_0_0_10', 'node-to-node mesh', '10.0.0.10', 64512, false],
    ],
  );
  const fromC = computeBgpPlan(base({ nodeName: 'c', nodes }));
  assert.deepEqual(fromC.peers.map((p) => [p.address, p.passive ?? false]), [['10.0.0.10', true], ['10.0.0.2', true]]);
  // The pair agrees: exactly one side of every session is passive.
  const fromB = computeBgpPlan(base({ nodeName: 'b', nodes }));
  for (const [x, y] of [[plan, fromC], [plan, fromB], [fromB, fromC]] as const) {
    const xy = x.peers.find((p) => p.address === y.nodeIP)!;
    const yx = y.peers.find((p) => p.address === x.nodeIP)!;
    assert.notEqual(xy.passive ?? false, yx.passive ?? false);
  }
});

test('no IP → BGP disabled with a reason; mesh off; listenPort and per-node AS', () => {
  assert.equal(computeBgpPlan(base({ nodeName: 'd', nodes })).enabled, false);
  assert.match(computeBgpPlan(base({ nodeName: 'zz', nodes })).reason!, /no Node resource/);
  const off = computeBgpPlan(base({ nodes, config: { apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { nodeToNodeMeshEnabled: false } } }));
  assert.deepEqual(off.peers, []);
  const ns = [node('a', '10.0.0.2', { as: 65001 }), node('b', '10.0.0.3', { as: 65002 })];
  const p = computeBgpPlan(base({ nodes: ns, config: { apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { listenPort: 1179, asNumber: 65000 } } }));
  assert.equal(p.asNumber, 65001);
  assert.equal(p.listenPort, 1179);
  assert.deepEqual(p.peers.map((x) => [x.name, x.port, x.asNumber]), [['Mesh_10_0_0_3_port_1179', 1179, 65002]]);
});

test('BGPPeers: global, node, nodeSelector, peerSelector, options, dedupe, self skipped', () => {
  const ns = [node('a', '10.0.0.2', { labels: { rack: 'r1' } }), node('b', '10.0.0.3', { labels: { rack: 'r2', rr: 'true' } })];
  const peers = [
    peer('tor', { peerIP: '10.0.0.254', asNumber: 65100, ttlSecurity: 1, keepOriginalNextHop: true, maxRestartTime: '2m', password: { secretKeyRef: { name: 's', key: 'k' } } }),
    peer('only-b', { node: 'b', peerIP: '10.0.0.200', asNumber: 65200 }),
    peer('only-a', { node: 'a', peerIP: '10.0.0.201:1179', asNumber: 65201, sourceAddress: 'None' }),
    peer('rack1', { nodeSelector: 'rack == "r1"', peerIP: '10.0.0.202', asNumber: 65202 }),
    peer('rack2', { nodeSelector: 'rack == "r2"', peerIP: '10.0.0.203', asNumber: 65203 }),
    peer('to-rr', { nodeSelector: 'all()', peerSelector: 'rr == "true"' }),
    peer('self', { peerIP: '10.0.0.2', asNumber: 64512 }),
  ];
  const plan = computeBgpPlan(base({ nodes: ns, peers, secret: (r) => (r.name === 's' ? 'sekret' : undefined) }));
  assert.deepEqual(plan.peers.map((p) => [p.name, p.type, p.asNumber, p.source ?? '-']), [
    ['Mesh_10_0_0_3', 'node-to-node mesh', 64512, '-'],
    ['Node_10_0_0_201_port_1179', 'node specific', 65201, 'only-a'],
    ['Node_10_0_0_202', 'node specific', 65202, 'rack1'],
    ['Global_10_0_0_254', 'global', 65100, 'tor'],
  ]);
  const tor = plan.peers.find((p) => p.source === 'tor')!;
  assert.equal(tor.password, 'sekret');
  assert.equal(tor.ttlSecurity, 1);
  assert.equal(tor.nextHopMode, 'Keep');
  assert.equal(tor.gracefulRestartTime, 120);
  assert.equal(tor.sourceAddress, '10.0.0.2');
  assert.equal(plan.peers.find((p) => p.source === 'only-a')!.sourceAddress, undefined);
});

test('route reflectors: RR skips mesh, RR nodes left out of mesh, rr client flag', () => {
  const ns = [node('rr1', '10.0.0.1', { rr: '244.0.0.1', labels: { rr: 'true' } }), node('a', '10.0.0.2'), node('b', '10.0.0.3')];
  const peers = [peer('to-rr', { nodeSelector: 'all()', peerSelector: 'rr == "true"' })];
  const a = computeBgpPlan(base({ nodes: ns, peers }));
  assert.deepEqual(a.peers.map((p) => [p.name, p.type, p.routeReflectorClient ?? false]), [
    ['Mesh_10_0_0_3', 'node-to-node mesh', false],
    ['Node_10_0_0_1', 'node specific', false],
  ]);
  const rr = computeBgpPlan(base({ nodeName: 'rr1', nodes: ns, peers: [...peers, peer('rr-clients', { node: 'rr1', peerSelector: '!has(rr)' })] }));
  assert.equal(rr.clusterId, '244.0.0.1');
  assert.deepEqual(rr.peers.map((p) => [p.name, p.routeReflectorClient ?? false]), [['Node_10_0_0_2', true], ['Node_10_0_0_3', true]]);
});

test('router id: CALICO_ROUTER_ID literal and hash', () => {
  assert.equal(computeBgpPlan(base({ nodes, routerId: '1.1.1.1' })).routerId, '1.1.1.1');
  const h = computeBgpPlan(base({ nodes, routerId: 'hash' })).routerId;
  assert.equal(h, hashRouterId('a'));
  assert.match(h, /^\d+\.\d+\.\d+\.\d+$/);
  assert.notEqual(hashRouterId('a'), hashRouterId('b'));
});

function aff(cidr: string, nodeName: string, state: BlockAffinity['spec']['state']): BlockAffinity {
  return { apiVersion: 'crd.projectcalico.org/v1', kind: 'BlockAffinity', metadata: { name: `${nodeName}-${cidr}` }, spec: { cidr, node: nodeName, state, deleted: 'false' } };
}
function block(cidr: string, affinity: string, owners: Array<string | null>): IPAMBlock {
  const attributes = owners.filter((o): o is string => o !== null).map((n) => ({ handle_id: `h-${n}`, secondary: { node: n } }));
  let i = 0;
  return {
    apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMBlock', metadata: { name: cidr.replace(/[./]/g, '-') },
    spec: { cidr, affinity, allocations: owners.map((o) => (o === null ? null : i++)), unallocated: [], attributes, strictAffinity: false },
  };
}
function pool(cidr: string, disableBGPExport = false): IPPool {
  return { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: cidr }, spec: { cidr, disableBGPExport } };
}

test('exports: confirmed affine blocks only (no pending), aggregated, borrowed /32s, disableBGPExport honoured', () => {
  const affs = [
    aff('10.244.1.0/26', 'a', 'confirmed'),
    aff('10.244.0.0/26', 'a', ''),
    aff('10.244.2.0/26', 'a', 'pending'),
    aff('10.244.3.0/26', 'b', 'confirmed'),
    aff('10.99.0.0/26', 'a', 'confirmed'),
    aff('10.244.1.0/28', 'a', 'confirmed'),
  ];
  const blocks = [block('10.244.3.0/26', 'host:b', ['b', 'a', null, 'a']), block('10.244.1.0/26', 'host:a', ['a'])];
  const { exports, blackholes } = computeExports('a', affs, blocks, [pool('10.244.0.0/16'), pool('10.99.0.0/16', true)]);
  assert.deepEqual(exports, ['10.244.0.0/26', '10.244.1.0/26', '10.244.3.1/32', '10.244.3.3/32']);
  assert.deepEqual(blackholes, ['10.99.0.0/26', '10.244.0.0/26', '10.244.1.0/26', '10.244.1.0/28']);
});

test('exports: confirmed IPv6 affine blocks and borrowed /128s, v4 before v6; blackholes for own v6 blocks', () => {
  const affs = [
    aff('10.244.1.0/26', 'a', 'confirmed'),
    aff('fd00:10:244::40/122', 'a', 'confirmed'),
    aff('fd00:10:244::80/122', 'a', 'pending'),
    aff('fd00:10:244::c0/122', 'b', 'confirmed'),
    aff('fd00:99::/122', 'a', 'confirmed'),
  ];
  const blocks = [block('fd00:10:244::c0/122', 'host:b', ['b', 'a', null, 'a']), block('fd00:10:244::ffc0/122', 'host:b', [...Array<null>(63).fill(null), 'a'])];
  const { exports, blackholes } = computeExports('a', affs, blocks, [pool('10.244.0.0/16'), pool('fd00:10:244::/48'), pool('fd00:99::/48', true)]);
  assert.deepEqual(exports, ['10.244.1.0/26', 'fd00:10:244::40/122', 'fd00:10:244::c1/128', 'fd00:10:244::c3/128', 'fd00:10:244::ffff/128']);
  assert.deepEqual(blackholes, ['10.244.1.0/26', 'fd00:10:244::40/122', 'fd00:99::/122']);
});
