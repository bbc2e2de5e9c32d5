import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dataplane } from '../../felix/dataplane.js';
import { vtepMac } from '../../felix/calc.js';
import { IpipUnsupportedError, ensureIpipDevice } from '../../felix/ipip.js';
import { ensureVxlanDevice, syncVxlanNeighbours } from '../../felix/vxlan.js';
import type { DesiredInputs } from '../../felix/model.js';
import type { SysctlSetting } from '../../felix/sysctl.js';
import { FakeNetlink } from './fake-netlink.js';

function inputs(mode: 'Never' | 'Always', extra: Partial<DesiredInputs> = {}): DesiredInputs {
  return {
    self: { name: 'n1', ipv4Address: '10.0.0.1/24', ipv4VXLANTunnelAddr: '10.244.1.0', ipv4IPIPTunnelAddr: '10.244.1.1' },
    parentIface: 'eth0',
    workloads: [{ iface: 'cali1', ipNetworks: ['10.244.1.5/32'] }],
    localBlocks: ['10.244.1.0/26'],
    remoteBlocks: [{ cidr: '10.244.2.0/26', node: 'n2' }],
    pools: [{ cidr: '10.244.0.0/16', vxlanMode: mode, natOutgoing: true }],
    nodes: [{ name: 'n2', ipv4Address: '10.0.0.2/24', ipv4VXLANTunnelAddr: '10.244.2.0' }],
    ...extra,
  };
}

function setup() {
  const nl = new FakeNetlink();
  nl.addLink('eth0', { mtu: 1500 });
  nl.addLink('cali1');
  const sysctls: SysctlSetting[] = [];
  const nft: string[] = [];
  const dp = new Dataplane({ nl, sysctl: (s) => void sysctls.push(...s), nft: async (s) => void nft.push(s) }, { routeRefreshIntervalMs: 0, debounceMs: 1 });
  return { nl, dp, sysctls, nft };
}

test('vxlan mode: device, neighbours, routes, sysctls, NAT — and a second identical update is a no-op', async (t) => {
  const { nl, dp, sysctls, nft } = setup();
  t.after(() => dp.stop());
  await dp.start();
  const st = await dp.update(inputs('Always'));
  assert.deepEqual(st.errors, {});
  assert.equal(st.applied, true);
  const vx = nl.links.get('vxlan.calico');
  assert.equal(vx?.mtu, 1450);
  assert.equal(vx?.vxlan?.id, 4096);
  assert.equal(vx?.vxlan?.port, 4789);
  assert.equal(vx?.address, vtepMac('n1'));
  assert.deepEqual(nl.addrs.map((a) => a.address), ['10.244.1.0/32']);
  const arp = nl.neighs.find((n) => n.family === 2);
  const fdb = nl.neighs.find((n) => n.family === 7);
  assert.deepEqual([arp?.ip, arp?.mac], ['10.244.2.0', vtepMac('n2')]);
  assert.deepEqual([fdb?.mac, fdb?.ip], [vtepMac('n2'), '10.0.0.2']);
  const r = nl.find('10.244.2.0/26');
  assert.deepEqual([r?.gw, r?.oif, r?.onlink, r?.protocol], ['10.244.2.0', vx?.index, true, 80]);
  assert.ok(sysctls.some(([k]) => k === 'net.ipv4.ip_forward'));
  assert.ok(sysctls.some(([k]) => Array.isArray(k) && k.includes('cali1') && k.includes('proxy_arp')));
  assert.match(nft[0] ?? '', /ip saddr @masq-pools ip daddr != @all-pools masquerade/);
  assert.equal(st.mtus?.pod, 1450);

  const before = { ...nl.calls, nft: nft.length, neighs: nl.neighs.length };
  await dp.update(inputs('Always'));
  assert.deepEqual([nl.calls.replace, nl.calls.del, nft.length, nl.neighs.length], [before.replace, before.del, before.nft, before.neighs]);
});

test('switching VXLAN → no-encap removes the device and its routes, routes go via the parent', async (t) => {
  const { nl, dp } = setup();
  t.after(() => dp.stop());
  await dp.start();
  await dp.update(inputs('Always'));
  const st = await dp.update(inputs('Never'));
  assert.equal(nl.links.has('vxlan.calico'), false);
  assert.deepEqual([nl.find('10.244.2.0/26')?.gw, nl.find('10.244.2.0/26')?.oif], ['10.0.0.2', nl.links.get('eth0')?.index]);
  assert.equal(st.mtus?.pod, 1500);
});

test('vxlan neighbours: stale entries removed, desired kept', async () => {
  const nl = new FakeNetlink();
  const link = await ensureVxlanDevice(nl, { name: 'tfxvx', tunnelIp: '10.1.0.1', mac: '66:00:00:00:00:01', mtu: 1450 });
  await nl.neighSet({ family: 2, ifindex: link.index, ip: '10.9.9.9', mac: '66:00:00:00:00:09' });
  await nl.neighSet({ family: 7, ifindex: link.index, mac: '66:00:00:00:00:09', ip: '10.0.9.9', flags: 2 });
  const res = await syncVxlanNeighbours(nl, link.index, [{ node: 'x', vtepIp: '10.1.0.2', mac: '66:00:00:00:00:02', hostIp: '10.0.0.2' }]);
  assert.deepEqual(res, { set: 2, deleted: 2 });
  assert.deepEqual(nl.neighs.map((n) => n.ip).sort(), ['10.0.0.2', '10.1.0.2']);
  assert.deepEqual(await syncVxlanNeighbours(nl, link.index, [{ node: 'x', vtepIp: '10.1.0.2', mac: '66:00:00:00:00:02', hostIp: '10.0.0.2' }]), { set: 0, deleted: 0 });
});

test('ipip: typed error when the kernel has no ipip; device configured when it has', async () => {
  const nl = new FakeNetlink();
  nl.unsupportedKinds.add('ipip');
  await assert.rejects(ensureIpipDevice(nl, { name: 'tunl0', mtu: 1480 }), (err: unknown) => err instanceof IpipUnsupportedError && err.code === 'IpipUnsupported' && /kernel has no ipip support/.test(err.message));
  nl.unsupportedKinds.clear();
  const l = await ensureIpipDevice(nl, { name: 'tunl0', mtu: 1480, tunnelIp: '10.244.1.1' });
  assert.deepEqual([l.mtu, l.up], [1480, true]);
  assert.deepEqual(nl.addrs.map((a) => a.address), ['10.244.1.1/32']);
});

test('dataplane with IPIP pool on a kernel without ipip: error recorded, other state still applied', async (t) => {
  const { nl, dp } = setup();
  nl.unsupportedKinds.add('ipip');
  t.after(() => dp.stop());
  await dp.start();
  const st = await dp.update({ ...inputs('Never'), pools: [{ cidr: '10.244.0.0/16', ipipMode: 'Always' }] });
  assert.match(st.errors.ipip ?? '', /kernel has no ipip support/);
  assert.equal(st.applied, false);
  assert.ok(nl.find('10.244.1.5/32'));
  assert.ok(nl.find('10.244.1.0/26'));
  assert.equal(nl.find('10.244.2.0/26'), undefined);
  assert.equal(st.routes.waitingForInterface, 1);
});

test('applied turns true once a late workload interface appears and its route is written', async (t) => {
  const { nl, dp } = setup();
  t.after(() => dp.stop());
  await dp.start();
  const st = await dp.update(inputs('Never', { workloads: [{ iface: 'cali7', ipNetworks: ['10.244.1.7/32'] }] }));
  assert.equal(st.applied, false);
  assert.equal(st.routes.waitingForInterface, 1);
  nl.addLink('cali7');
  const end = Date.now() + 3000;
  while (!dp.status().applied && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  assert.equal(dp.status().applied, true);
  assert.ok(nl.find('10.244.1.7/32'));
});
