import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Policy, PolicyError, PrefixAdvertisements, compileRules, parseCommunity, prefixWithin, type RouteContext } from '../../../bgp/policy/filter.js';
import { LOCAL_SOURCE, type PathSource } from '../../../bgp/rib/path.js';

const ibgp: PathSource = { id: '10.0.0.1', type: 'ibgp', address: '10.0.0.1', asn: 64512, routerId: '10.0.0.1', rrClient: false };
const ebgp: PathSource = { ...ibgp, id: '192.0.2.1', type: 'ebgp', address: '192.0.2.1' };
const ctx = (prefix: string, extra: Partial<RouteContext> = {}): RouteContext => ({
  family: prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast',
  prefix,
  source: ibgp,
  attrs: {},
  ...extra,
});

test('prefixWithin', () => {
  assert.ok(prefixWithin('10.1.2.0/24', '10.0.0.0/8'));
  assert.ok(prefixWithin('10.0.0.0/8', '10.0.0.0/8'));
  assert.ok(!prefixWithin('10.0.0.0/7', '10.0.0.0/8'));
  assert.ok(!prefixWithin('11.0.0.0/24', '10.0.0.0/8'));
  assert.ok(!prefixWithin('2001:db8::/64', '10.0.0.0/8'));
  assert.ok(prefixWithin('2001:db8:1::/48', '2001:db8::/32'));
});

test('matchOperator Equal / NotEqual / In / NotIn with prefixLength', () => {
  const m = (rule: Parameters<typeof compileRules>[0][number], prefix: string) => compileRules([rule])[0]!.matches(ctx(prefix));
  assert.ok(m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'Equal' }, '10.0.0.0/8'));
  assert.ok(!m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'Equal' }, '10.0.0.0/9'));
  assert.ok(m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'NotEqual' }, '10.0.0.0/9'));
  assert.ok(m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'In' }, '10.5.0.0/16'));
  assert.ok(!m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'In', prefixLength: { min: 24 } }, '10.5.0.0/16'));
  assert.ok(m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'In', prefixLength: { min: 24, max: 26 } }, '10.5.0.0/26'));
  assert.ok(!m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'In', prefixLength: { max: 24 } }, '10.5.0.0/26'));
  assert.ok(m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'NotIn' }, '192.168.0.0/16'));
  assert.ok(!m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'NotIn' }, '10.1.0.0/16'));
});

test('source, interface, peerType, communities, asPathPrefix conditions', () => {
  const one = (rule: Parameters<typeof compileRules>[0][number], c: RouteContext) => compileRules([rule])[0]!.matches(c);
  assert.ok(one({ action: 'Reject', source: 'RemotePeers' }, ctx('10.0.0.0/24')));
  assert.ok(!one({ action: 'Reject', source: 'RemotePeers' }, ctx('10.0.0.0/24', { source: LOCAL_SOURCE })));
  const viaEth = { ...LOCAL_SOURCE, interfaceName: 'eth1' };
  assert.ok(one({ action: 'Accept', interface: 'eth*' }, ctx('10.0.0.0/24', { source: viaEth })));
  assert.ok(!one({ action: 'Accept', interface: 'cali*' }, ctx('10.0.0.0/24', { source: viaEth })));
  assert.ok(one({ action: 'Accept', peerType: 'eBGP' }, ctx('10.0.0.0/24', { source: ebgp })));
  assert.ok(!one({ action: 'Accept', peerType: 'eBGP' }, ctx('10.0.0.0/24')));
  const withComms = ctx('10.0.0.0/24', { attrs: { communities: [65000 * 65536 + 100], largeCommunities: [[65000, 1, 2]] } });
  assert.ok(one({ action: 'Accept', communities: { values: ['65000:100'] } }, withComms));
  assert.ok(one({ action: 'Accept', communities: ['65000:100', '65000:1:2'] }, withComms));
  assert.ok(!one({ action: 'Accept', communities: ['65000:101'] }, withComms));
  const withPath = ctx('10.0.0.0/24', { attrs: { asPath: [{ type: 2, asns: [65001, 65002, 65003] }] } });
  assert.ok(one({ action: 'Accept', asPathPrefix: [65001, 65002] }, withPath));
  assert.ok(!one({ action: 'Accept', asPathPrefix: [65002] }, withPath));
});

test('first match wins across filters; no match accepts; per family', () => {
  const p = new Policy(
    [
      { name: 'a', spec: { exportV4: [{ action: 'Reject', cidr: '10.99.0.0/16', matchOperator: 'In' }] } },
      { name: 'b', spec: { exportV4: [{ action: 'Accept', cidr: '10.99.1.0/24', matchOperator: 'Equal' }, { action: 'Reject', cidr: '0.0.0.0/0' }], exportV6: [{ action: 'Reject', cidr: '2001:db8::/32' }] } },
    ],
    'export',
  );
  assert.equal(p.accepts(ctx('10.99.1.0/24')), false, 'filter a rejects first');
  assert.equal(p.accepts(ctx('10.1.0.0/24')), false, 'catch-all reject');
  assert.equal(p.accepts(ctx('2001:db8:1::/48')), false);
  assert.equal(p.accepts(ctx('2001:db9::/48')), true, 'no v6 match accepts');
  assert.equal(new Policy([], 'import').accepts(ctx('10.0.0.0/8')), true);
  assert.equal(new Policy(p ? [] : [], 'import').empty, true);
});

test('invalid values are typed errors', () => {
  assert.throws(() => compileRules([{ action: 'Accept', cidr: '10.0.0.0/33' }]), PolicyError);
  assert.throws(() => compileRules([{ action: 'Drop' as 'Accept' }]), PolicyError);
  assert.throws(() => parseCommunity('65536:1'), PolicyError);
  assert.deepEqual(parseCommunity('65000:1:2'), { kind: 'large', value: [65000, 1, 2] });
  assert.deepEqual(parseCommunity('1:2'), { kind: 'standard', value: 65538 });
});

test('prefixAdvertisements attach communities and large communities inside the CIDR only', () => {
  const ads = new PrefixAdvertisements([
    { cidr: '10.244.0.0/16', communities: ['65000:100', '65000:1:2'] },
    { cidr: '10.244.1.0/26', communities: ['65000:200', '65000:100'] },
  ]);
  const attrs = { communities: [1] };
  assert.equal(ads.apply('10.1.0.0/24', attrs), attrs);
  const out = ads.apply('10.244.1.0/26', attrs);
  assert.deepEqual(out.communities, [1, 65000 * 65536 + 100, 65000 * 65536 + 200]);
  assert.deepEqual(out.largeCommunities, [[65000, 1, 2]]);
  assert.deepEqual(attrs, { communities: [1] }, 'input untouched');
});
