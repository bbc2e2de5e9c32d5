import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calculate, encapFor, vtepMac } from '../../felix/calc.js';
import type { DesiredInputs, PoolInput } from '../../felix/model.js';

function inputs(pool: PoolInput, extra: Partial<DesiredInputs> = {}): DesiredInputs {
  return {
    self: { name: 'n1', ipv4Address: '10.0.0.1/24', ipv6Address: 'fd00::1/64' },
    parentIface: 'eth0',
    workloads: [{ iface: 'cali1234', ipNetworks: ['10.244.1.5/32', 'fd10::5/128'] }],
    localBlocks: ['10.244.1.0/26', 'fd10::/122'],
    remoteBlocks: [
      { cidr: '10.244.2.0/26', node: 'n2' },
      { cidr: '10.244.3.0/26', node: 'n3' },
      { cidr: 'fd10::40/122', node: 'n2' },
    ],
    pools: [pool, { cidr: 'fd10::/64' }],
    nodes: [
      { name: 'n1', ipv4Address: '10.0.0.1/24' },
      { name: 'n2', ipv4Address: '10.0.0.2/24', ipv6Address: 'fd00::2/64', ipv4VXLANTunnelAddr: '10.244.2.0', vxlanTunnelMACAddr: '66:AA:BB:CC:DD:EE' },
      { name: 'n3', ipv4Address: '10.1.0.3/24', ipv4VXLANTunnelAddr: '10.244.3.0' },
    ],
    ...extra,
  };
}

const byDst = (s: ReturnType<typeof calculate>) => Object.fromEntries(s.routes.map((r) => [r.dst, r]));

test('workload /32 and /128 routes, blackholes for own blocks (v4 + v6)', () => {
  const r = byDst(calculate(inputs({ cidr: '10.244.0.0/16' })));
  assert.deepEqual(r['10.244.1.5/32'], { dst: '10.244.1.5/32', kind: 'unicast', dev: 'cali1234', scope: 'link', reason: 'workload' });
  assert.deepEqual(r['fd10::5/128'], { dst: 'fd10::5/128', kind: 'unicast', dev: 'cali1234', scope: 'link', reason: 'workload' });
  assert.equal(r['10.244.1.0/26']?.kind, 'blackhole');
  assert.equal(r['fd10::/122']?.kind, 'blackhole');
  assert.deepEqual(r['fd10::40/122'], { dst: 'fd10::40/122', kind: 'unicast', gw: 'fd00::2', dev: 'eth0', reason: 'noencap' });
});

test('no-encap: via node IP dev parent', () => {
  const s = calculate(inputs({ cidr: '10.244.0.0/16', ipipMode: 'Never', vxlanMode: 'Never' }));
  const r = byDst(s);
  assert.deepEqual(r['10.244.2.0/26'], { dst: '10.244.2.0/26', kind: 'unicast', gw: '10.0.0.2', dev: 'eth0', reason: 'noencap' });
  assert.equal(r['10.244.3.0/26']?.gw, '10.1.0.3');
  assert.equal(s.needIpip, false);
  assert.equal(s.needVxlan, false);
  assert.deepEqual(s.vxlanPeers, []);
});

test('IPIP Always: via node IP dev tunl0 onlink', () => {
  const s = calculate(inputs({ cidr: '10.244.0.0/16', ipipMode: 'Always' }));
  assert.deepEqual(byDst(s)['10.244.2.0/26'], { dst: '10.244.2.0/26', kind: 'unicast', gw: '10.0.0.2', dev: 'tunl0', onlink: true, reason: 'ipip' });
  assert.equal(byDst(s)['10.244.3.0/26']?.dev, 'tunl0');
  assert.equal(s.needIpip, true);
});

test('IPIP CrossSubnet: direct in our subnet, tunnel otherwise', () => {
  const r = byDst(calculate(inputs({ cidr: '10.244.0.0/16', ipipMode: 'CrossSubnet' })));
  assert.equal(r['10.244.2.0/26']?.reason, 'noencap');
  assert.equal(r['10.244.2.0/26']?.dev, 'eth0');
  assert.equal(r['10.244.3.0/26']?.reason, 'ipip');
});

test('VXLAN Always: via remote VTEP dev vxlan.calico onlink, ARP/FDB peers with derived MAC', () => {
  const s = calculate(inputs({ cidr: '10.244.0.0/16', vxlanMode: 'Always' }), { interfacePrefix: 'tfx', ipipDevice: 'tfxtunl', vxlanDevice: 'tfxvx', routeProtocol: 80 });
  assert.deepEqual(byDst(s)['10.244.2.0/26'], { dst: '10.244.2.0/26', kind: 'unicast', gw: '10.244.2.0', dev: 'tfxvx', onlink: true, reason: 'vxlan' });
  assert.deepEqual(s.vxlanPeers, [
    { node: 'n2', vtepIp: '10.244.2.0', mac: '66:aa:bb:cc:dd:ee', hostIp: '10.0.0.2' },
    { node: 'n3', vtepIp: '10.244.3.0', mac: vtepMac('n3'), hostIp: '10.1.0.3' },
  ]);
  assert.equal(s.needVxlan, true);
});

test('VXLAN CrossSubnet and missing VTEP is a warning, not a route', () => {
  const nodes = inputs({ cidr: '10.244.0.0/16' }).nodes.map((n) => (n.name === 'n3' ? { name: 'n3', ipv4Address: '10.1.0.3/24' } : n));
  const s = calculate(inputs({ cidr: '10.244.0.0/16', vxlanMode: 'CrossSubnet' }, { nodes }));
  assert.equal(byDst(s)['10.244.2.0/26']?.reason, 'noencap');
  assert.equal(byDst(s)['10.244.3.0/26'], undefined);
  assert.match(s.warnings.join('\n'), /10\.244\.3\.0\/26: node n3 has no VXLAN tunnel address/);
});

test('encapsulation comes from the most specific pool containing the block; BGP next hop wins', () => {
  const pools: PoolInput[] = [{ cidr: '10.0.0.0/8', ipipMode: 'Always' }, { cidr: '10.244.2.0/24', vxlanMode: 'Never' }];
  const s = calculate({ ...inputs(pools[0] as PoolInput), pools, remoteBlocks: [{ cidr: '10.244.2.0/26', node: 'n2', nextHop: '10.0.0.9' }, { cidr: '10.244.3.0/26', node: 'n3' }] });
  assert.equal(byDst(s)['10.244.2.0/26']?.reason, 'noencap');
  assert.equal(byDst(s)['10.244.2.0/26']?.gw, '10.0.0.9');
  assert.equal(byDst(s)['10.244.3.0/26']?.reason, 'ipip');
  assert.equal(encapFor(undefined, '10.0.0.1/24', '10.9.9.9'), 'none');
});

test('own blocks listed as remote are skipped; local workload wins a dst clash; output sorted', () => {
  const s = calculate(inputs({ cidr: '10.244.0.0/16' }, { remoteBlocks: [{ cidr: '10.244.1.5/32', node: 'n2' }, { cidr: '10.244.9.0/26', node: 'n1' }] }));
  assert.equal(byDst(s)['10.244.1.5/32']?.reason, 'workload');
  assert.equal(byDst(s)['10.244.9.0/26'], undefined);
  const dsts = s.routes.map((r) => r.dst);
  assert.deepEqual(dsts, [...dsts].sort());
});

test('vtepMac is deterministic, locally administered unicast', () => {
  assert.equal(vtepMac('node-a'), vtepMac('node-a'));
  assert.notEqual(vtepMac('node-a'), vtepMac('node-b'));
  assert.match(vtepMac('node-a'), /^66(:[0-9a-f]{2}){5}$/);
  assert.notEqual(vtepMac('node-a'), vtepMac('node-a', true));
});
