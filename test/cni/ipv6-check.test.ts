/** CNI CHECK of a dual-stack pod: the /128, the IPv6 default route via the host veth's link-local, the host /128 route, the IPv6 sysctls. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ObservedPod, type SetupParams, checkPod, hostSysctls } from '../../cni/plugin/dataplane.js';

const dual: SetupParams = {
  netns: '/ns', ifname: 'eth0', hostIf: 'cali1', containerMac: '02:00:00:00:00:01', mtu: 1500,
  ips: [{ family: 4, ip: '10.0.0.5' }, { family: 6, ip: 'fd00:10:244::5' }], alias: 'tabby:c1:eth0', allowIpForwarding: false,
};

function observed(): ObservedPod {
  return {
    host: { mac: 'ee:ee:ee:ee:ee:ee', up: true, alias: 'tabby:c1:eth0', mtu: 1500 },
    hostRoutes: [{ dst: '10.0.0.5', scope: 'link' }, { dst: 'fd00:10:244::5/128', scope: 'global' }],
    hostSysctls: hostSysctls('cali1', true),
    container: { mac: '02:00:00:00:00:01', up: true, mtu: 1500, addrs: ['10.0.0.5/32', 'fd00:10:244::5/128', 'fe80::1/64'] },
    containerRoutes: [
      { dst: '169.254.1.1', scope: 'link' },
      { dst: 'default', gateway: '169.254.1.1', scope: 'global' },
      { dst: 'default', gateway: 'fe80::ecee:eeff:feee:eeee', scope: 'global' },
    ],
  };
}

test('checkPod (dual stack): healthy passes; each missing IPv6 piece is named', () => {
  assert.deepEqual(checkPod(dual, observed()), []);
  const cases: Array<[string, (o: ObservedPod) => void]> = [
    ['address fd00:10:244::5/128 is missing', (o) => { if (o.container) o.container.addrs = o.container.addrs.filter((a) => a !== 'fd00:10:244::5/128'); }],
    ['default route via fe80::ecee:eeff:feee:eeee is missing', (o) => { o.containerRoutes = o.containerRoutes.filter((r) => r.gateway !== 'fe80::ecee:eeff:feee:eeee'); }],
    ['host route fd00:10:244::5 dev cali1 is missing', (o) => { o.hostRoutes = o.hostRoutes.filter((r) => !r.dst.includes(':')); }],
    ['sysctl net.ipv6.conf.cali1.proxy_ndp is 0, want 1', (o) => { o.hostSysctls['net/ipv6/conf/cali1/proxy_ndp'] = '0'; }],
    ['sysctl net.ipv6.conf.cali1.accept_dad is absent', (o) => { delete o.hostSysctls['net/ipv6/conf/cali1/accept_dad']; }],
  ];
  for (const [needle, mutate] of cases) {
    const o = observed();
    mutate(o);
    const p = checkPod(dual, o);
    assert.ok(p.some((x) => x.includes(needle)), `${needle}: ${p.join('; ')}`);
    assert.equal(p.length, 1, `only the broken piece is reported: ${p.join('; ')}`);
  }
  // An IPv4-only pod does not ask for any IPv6 piece.
  assert.deepEqual(checkPod({ ...dual, ips: [{ family: 4, ip: '10.0.0.5' }] }, { ...observed(), hostSysctls: hostSysctls('cali1', false) }), []);
});
