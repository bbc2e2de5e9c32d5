/**
 * felix and IPv6 (issue 6, dual stack): the IPv6 parent interface for no-encap routes, and
 * FELIX_IPV6SUPPORT (Dataplane `ipv6`) — true: v6 sysctls + v6 routes + ip6 NAT; false: IPv6 left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dataplane } from '../../felix/dataplane.js';
import { calculate, withoutIPv6 } from '../../felix/calc.js';
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
