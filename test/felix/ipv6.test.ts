/**
 * felix and IPv6 (issue 6, dual stack): the IPv6 parent interface for no-encap routes, and
 * FELIX_IPV6SUPPORT (Dataplane `ipv6`) — true: v6 sysctls + v6 routes + ip6 NAT; false: IPv6 left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dataplane } from '../../felix/dataplane.js';
import { calculate, vtepMac, withoutIPv6 } from '../../felix/calc.js';
import { inputsFromResources } from '../../felix/resources.js';
import type { DesiredInputs } from '../../felix/model.js';
import type { SysctlSetting } from '../../felix/sysctl.js';
import { FakeNetlink } from './fake-netlink.js';

function dual(extra: Partial<DesiredInputs> = {}): DesiredInputs {
  return {
    self: { name: 'n1', ipv4Address: '10.0.0.1/24', ipv6Address: 'fd00::1/64' },
    parentIface: 'eth0',
    workloads: [{ iface: 'cali1', ipNetworks: ['10.244.1.5/32', 'fd10::5/128'] }],
    localBlocks: ['10.244.1.0/26', 'fd10::/122'],
    remoteBlocks: [
      { cidr: '10.244.2.0/26', node: 'n2' },
      { cidr: 'fd10::40/122', node: 'n2' },
    ],
    pools: [
      { cidr: '10.244.0.0/16', natOutgoing: true },
      { cidr: 'fd10::/64', natOutgoing: true },
    ],
    nodes: [{ name: 'n2', ipv4Address: '10.0.0.2/24', ipv6Address: 'fd00::2/64' }],
    ...extra,
  };
}

test('IPv6 no-encap routes use the IPv6 parent interface when it differs; IPv4 keeps its own', () => {
  const s = calculate(dual({ parentIface6: 'eth1' }));
  const r = Object.fromEntries(s.routes.map((x) => [x.dst, x]));
  assert.deepEqual(r['fd10::40/122'], { dst: 'fd10::40/122', kind: 'unicast', gw: 'fd00::2', dev: 'eth1', reason: 'noencap' });
  assert.equal(r['10.244.2.0/26']?.dev, 'eth0');
  // inputsFromResources passes it on only when it differs from the IPv4 parent.
  const view = { nodeName: 'n1', nodes: [], pools: [], blocks: [], affinities: [], workloadEndpoints: [] };
  assert.equal(inputsFromResources({ ...view, parentIface: 'eth0', parentIface6: 'eth1' }).parentIface6, 'eth1');
  assert.equal(inputsFromResources({ ...view, parentIface: 'eth0', parentIface6: 'eth0' }).parentIface6, undefined);
});

test('withoutIPv6 drops every IPv6 input and keeps IPv4 untouched', () => {
  const v4 = withoutIPv6(dual());
  assert.deepEqual(v4.workloads, [{ iface: 'cali1', ipNetworks: ['10.244.1.5/32'] }]);
  assert.deepEqual(v4.localBlocks, ['10.244.1.0/26']);
  assert.deepEqual(v4.remoteBlocks, [{ cidr: '10.244.2.0/26', node: 'n2' }]);
  assert.deepEqual(v4.pools, [{ cidr: '10.244.0.0/16', natOutgoing: true }]);
  assert.ok(calculate(v4).routes.every((r) => !r.dst.includes(':')));
});

function setup(ipv6: boolean) {
  const nl = new FakeNetlink();
  nl.addLink('eth0', { mtu: 1500 });
  nl.addLink('cali1');
  const sysctls: SysctlSetting[] = [];
  const nft: string[] = [];
  const dp = new Dataplane({ nl, sysctl: (s) => void sysctls.push(...s), nft: async (s) => void nft.push(s) }, { routeRefreshIntervalMs: 0, debounceMs: 1, ipv6 });
  return { nl, dp, sysctls, nft };
}

const key = ([k]: SysctlSetting): string => (Array.isArray(k) ? k.join('/') : k);

test('FELIX_IPV6SUPPORT=true: /128 workload route, v6 blackhole, remote v6 block, v6 sysctls, ip6 NAT masquerade', async (t) => {
  const { nl, dp, sysctls, nft } = setup(true);
  t.after(() => dp.stop());
  await dp.start();
  const st = await dp.update(dual());
  assert.deepEqual(st.errors, {});
  assert.equal(st.applied, true);
  const cali = nl.links.get('cali1')!.index;
  const eth0 = nl.links.get('eth0')!.index;
  assert.deepEqual([nl.find('fd10::5/128')?.oif, nl.find('fd10::5/128')?.protocol], [cali, 80]);
  assert.equal(nl.find('fd10::/122')?.type, 6, 'blackhole');
  assert.deepEqual([nl.find('fd10::40/122')?.gw, nl.find('fd10::40/122')?.oif], ['fd00::2', eth0]);
  const keys = sysctls.map(key);
  assert.ok(keys.includes('net.ipv6.conf.all.forwarding'));
  for (const k of ['forwarding', 'proxy_ndp', 'accept_ra', 'disable_ipv6']) assert.ok(keys.includes(`net/ipv6/conf/cali1/${k}`), k);
  assert.ok(nft.some((s) => /table ip6 tabby-nat[\s\S]*fd10::\/64[\s\S]*ip6 saddr @masq-pools ip6 daddr != @all-pools masquerade/.test(s)), nft.join('\n---\n'));
});

test('FELIX_IPV6SUPPORT=false: IPv6 left alone (no v6 routes, sysctls or ip6 NAT); IPv4 as usual', async (t) => {
  const { nl, dp, sysctls, nft } = setup(false);
  t.after(() => dp.stop());
  await dp.start();
  const st = await dp.update(dual());
  assert.equal(st.applied, true);
  assert.ok(nl.routes.every((r) => r.family !== 10), JSON.stringify(nl.routes));
  assert.ok(nl.find('10.244.2.0/26') && nl.find('10.244.1.5/32'));
  assert.ok(sysctls.every((s) => !key(s).includes('ipv6')));
  assert.ok(nft.every((s) => !/ip6 saddr/.test(s)));
});

function vx6(mode: 'Always' | 'CrossSubnet' | 'Never'): DesiredInputs {
  return dual({
    self: { name: 'n1', ipv4Address: '10.0.0.1/24', ipv6Address: 'fd00::1/64', ipv6VXLANTunnelAddr: 'fd10::1' },
    pools: [{ cidr: '10.244.0.0/16' }, { cidr: 'fd10::/64', vxlanMode: mode }],
    remoteBlocks: [
      { cidr: 'fd10::40/122', node: 'n2' },
      { cidr: 'fd10::80/122', node: 'n3' },
    ],
    nodes: [
      { name: 'n2', ipv4Address: '10.0.0.2/24', ipv6Address: 'fd00::2/64', ipv6VXLANTunnelAddr: 'fd10::41', vxlanTunnelMACAddrV6: '66:AA:BB:CC:DD:01' },
      { name: 'n3', ipv4Address: '10.0.0.3/24', ipv6Address: 'fd01::3/64', ipv6VXLANTunnelAddr: 'fd10::81' },
    ],
  });
}

test('IPv6 VXLAN: remote IPv6 blocks via the remote IPv6 VTEP dev vxlan-v6.calico onlink; NDP/FDB peers; CrossSubnet by the IPv6 subnet', () => {
  const s = calculate(vx6('Always'));
  const r = Object.fromEntries(s.routes.map((x) => [x.dst, x]));
  assert.deepEqual(r['fd10::40/122'], { dst: 'fd10::40/122', kind: 'unicast', gw: 'fd10::41', dev: 'vxlan-v6.calico', onlink: true, reason: 'vxlan' });
  assert.deepEqual(s.vxlanPeers6, [
    { node: 'n2', vtepIp: 'fd10::41', mac: '66:aa:bb:cc:dd:01', hostIp: 'fd00::2' },
    { node: 'n3', vtepIp: 'fd10::81', mac: vtepMac('n3', true), hostIp: 'fd01::3' },
  ]);
  assert.deepEqual([s.needVxlan, s.needVxlan6, s.vxlanPeers], [false, true, []], 'the IPv4 pool has no VXLAN');
  const cross = calculate(vx6('CrossSubnet'));
  const c = Object.fromEntries(cross.routes.map((x) => [x.dst, x]));
  assert.equal(c['fd10::40/122']?.reason, 'noencap', 'n2 shares fd00::/64');
  assert.equal(c['fd10::80/122']?.dev, 'vxlan-v6.calico', 'n3 is on fd01::/64');
  // IPIP never applies to IPv6 blocks.
  const ipip = calculate(dual({ pools: [{ cidr: '10.244.0.0/16' }, { cidr: 'fd10::/64', ipipMode: 'Always' }] }));
  assert.equal(ipip.routes.find((x) => x.dst === 'fd10::40/122')?.reason, 'noencap');
  assert.equal(ipip.needIpip, false);
});

test('IPv6 VXLAN dataplane: vxlan-v6.calico (VNI 4096, MTU host − 70, /128 VTEP address, IPv6 underlay), NDP + FDB entries; removed with the pool', async (t) => {
  const { nl, dp } = setup(true);
  t.after(() => dp.stop());
  await dp.start();
  const st = await dp.update(vx6('Always'));
  assert.deepEqual(st.errors, {});
  assert.equal(st.applied, true);
  const dev = nl.links.get('vxlan-v6.calico');
  assert.ok(dev, 'device created');
  assert.deepEqual([dev.mtu, dev.vxlan?.id, dev.vxlan?.port, dev.vxlan?.local, dev.address], [1430, 4096, 4789, 'fd00::1', vtepMac('n1', true)]);
  assert.equal(nl.links.has('vxlan.calico'), false, 'no IPv4 VXLAN device');
  assert.deepEqual(nl.addrs.filter((a) => a.ifindex === dev.index).map((a) => a.address), ['fd10::1/128']);
  const ndp = nl.neighs.filter((n) => n.family === 10).map((n) => [n.ip, n.mac]);
  const fdb = nl.neighs.filter((n) => n.family === 7).map((n) => [n.mac, n.ip]);
  assert.deepEqual(ndp, [['fd10::41', '66:aa:bb:cc:dd:01'], ['fd10::81', vtepMac('n3', true)]]);
  assert.deepEqual(fdb, [['66:aa:bb:cc:dd:01', 'fd00::2'], [vtepMac('n3', true), 'fd01::3']]);
  const r = nl.find('fd10::40/122');
  assert.deepEqual([r?.gw, r?.oif, r?.onlink, r?.protocol], ['fd10::41', dev.index, true, 80]);
  assert.equal(st.mtus?.pod, 1430);

  await dp.update(vx6('Never'));
  assert.equal(nl.links.has('vxlan-v6.calico'), false, 'device removed when no IPv6 pool uses VXLAN');
  assert.deepEqual([nl.find('fd10::40/122')?.gw, nl.find('fd10::40/122')?.oif], ['fd00::2', nl.links.get('eth0')?.index]);
});
