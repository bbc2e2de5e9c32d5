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
  // Calico: `net !~ [ 10.0.0.0/8{16,24} ]` — prefixLength narrows NotIn too.
  const notInSet = { action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'NotIn', prefixLength: { min: 16, max: 24 } } as const;
  assert.ok(!m(notInSet, '10.1.0.0/16'));
  assert.ok(m(notInSet, '10.1.1.128/25'), 'inside the CIDR but longer than max');
  assert.ok(m(notInSet, '10.0.0.0/8'), 'shorter than min');
  assert.ok(m(notInSet, '11.0.0.0/16'));
  // min below the CIDR's own length does not widen it.
  assert.ok(!m({ action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'In', prefixLength: { min: 4 } }, '8.0.0.0/5'));
  assert.ok(m({ action: 'Accept', cidr: '2001:db8::/32', matchOperator: 'In', prefixLength: { max: 64 } }, '2001:db8:1::/48'));
  assert.ok(!m({ action: 'Accept', cidr: '2001:db8::/32', matchOperator: 'In', prefixLength: { max: 64 } }, '2001:db8:1::/96'));
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
  assert.ok(one({ action: 'Accept', communities: { values: ['65000:1:2'] } }, withComms));
  assert.ok(!one({ action: 'Accept', communities: { values: ['65000:101'] } }, withComms));
  assert.ok(!one({ action: 'Accept', communities: { values: ['65000:1:3'] } }, withComms));
  const withPath = ctx('10.0.0.0/24', { attrs: { asPath: [{ type: 2, asns: [65001, 65002, 65003] }] } });
  assert.ok(one({ action: 'Accept', asPathPrefix: [65001, 65002] }, withPath));
  assert.ok(!one({ action: 'Accept', asPathPrefix: [65002] }, withPath));
});

test('first match wins across filters; no match accepts; per family', () => {
  const p = new Policy(
    [
      { name: 'a', spec: { exportV4: [{ action: 'Reject', cidr: '10.99.0.0/16', matchOperator: 'In' }] } },
      { name: 'b', spec: { exportV4: [{ action: 'Accept', cidr: '10.99.1.0/24', matchOperator: 'Equal' }, { action: 'Reject', cidr: '0.0.0.0/0', matchOperator: 'In' }], exportV6: [{ action: 'Reject', cidr: '2001:db8::/32', matchOperator: 'In' }] } },
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
  assert.throws(() => compileRules([{ action: 'Accept', cidr: '10.0.0.0/33', matchOperator: 'In' }]), PolicyError);
  assert.throws(() => compileRules([{ action: 'Accept', cidr: '10.0.0.0/8' }]), /needs a matchOperator/);
  assert.throws(() => compileRules([{ action: 'Accept', matchOperator: 'In' }]), /needs a cidr/);
  assert.throws(() => compileRules([{ action: 'Accept', prefixLength: { min: 24 } }]), /prefixLength needs a cidr/);
  assert.throws(() => compileRules([{ action: 'Accept', cidr: '2001:db8::/32', matchOperator: 'In' }], { family: 'ipv4-unicast' }), /not an IPv4 network/);
  assert.throws(() => compileRules([{ action: 'Reject', operations: [{ setPriority: { value: 5 } }] }]), /only be used with action Accept/);
  assert.throws(() => compileRules([{ action: 'Accept', operations: [{ setPriority: { value: 5 }, addCommunity: { value: '1:1' } }] }]), /exactly one/);
  assert.throws(() => compileRules([{ action: 'Accept', operations: [{}] }]), /exactly one/);
  assert.throws(() => compileRules([{ action: 'Accept', operations: [{ addCommunity: { value: '1:70000' } }] }]), PolicyError);
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

test('priority matches the route priority (default 1024 or the configured one)', () => {
  const one = (rule: Parameters<typeof compileRules>[0][number], c: RouteContext, defaultPriority?: number) =>
    compileRules([rule], defaultPriority === undefined ? {} : { defaultPriority })[0]!.matches(c);
  assert.ok(one({ action: 'Accept', priority: 1024 }, ctx('10.0.0.0/24')));
  assert.ok(!one({ action: 'Accept', priority: 512 }, ctx('10.0.0.0/24')));
  assert.ok(one({ action: 'Accept', priority: 512 }, ctx('10.0.0.0/24'), 512));
  assert.ok(one({ action: 'Accept', priority: 300 }, ctx('10.0.0.0/24', { attrs: { priority: 300 } })));
});

test('operations of an Accept rule: add community, prepend AS path, set priority; input untouched', () => {
  const p = new Policy(
    [
      {
        name: 'ops',
        spec: {
          importV4: [
            {
              action: 'Accept',
              cidr: '10.1.0.0/16',
              matchOperator: 'In',
              operations: [
                { addCommunity: { value: '65000:100' } },
                { addCommunity: { value: '65000:7:8' } },
                { addCommunity: { value: '65000:100' } },
                { prependASPath: { prefix: [65010, 65011] } },
                { setPriority: { value: 512 } },
              ],
            },
            { action: 'Reject', cidr: '10.2.0.0/16', matchOperator: 'In' },
          ],
        },
      },
    ],
    'import',
  );
  const attrs = { asPath: [{ type: 2 as const, asns: [65001] }], communities: [1] };
  const out = p.evaluate(ctx('10.1.2.0/24', { attrs }));
  assert.ok(out);
  assert.deepEqual(out.communities, [1, 65000 * 65536 + 100], 'added once');
  assert.deepEqual(out.largeCommunities, [[65000, 7, 8]]);
  assert.deepEqual(out.asPath, [{ type: 2, asns: [65010, 65011, 65001] }], 'prefix in the order listed');
  assert.equal(out.priority, 512);
  assert.deepEqual(attrs, { asPath: [{ type: 2, asns: [65001] }], communities: [1] }, 'input untouched');
  assert.equal(p.evaluate(ctx('10.2.0.0/24', { attrs })), false);
  assert.equal(p.evaluate(ctx('10.3.0.0/24', { attrs })), attrs, 'no match: accepted unchanged (same object)');
  // An empty AS_PATH (local route) gets a new AS_SEQUENCE.
  const local = p.evaluate(ctx('10.1.0.0/24', { attrs: {} }));
  assert.ok(local);
  assert.deepEqual(local.asPath, [{ type: 2, asns: [65010, 65011] }]);
});

test('rules of several filters apply in order: an earlier filter decides first', () => {
  const prio = (v: number) => ({ action: 'Accept' as const, cidr: '10.0.0.0/8', matchOperator: 'In' as const, operations: [{ setPriority: { value: v } }] });
  const p = new Policy([{ name: 'a', spec: { importV4: [prio(100)] } }, { name: 'b', spec: { importV4: [prio(200)] } }], 'import');
  const q = new Policy([{ name: 'b', spec: { importV4: [prio(200)] } }, { name: 'a', spec: { importV4: [prio(100)] } }], 'import');
  assert.equal((p.evaluate(ctx('10.1.0.0/16')) as { priority?: number }).priority, 100);
  assert.equal((q.evaluate(ctx('10.1.0.0/16')) as { priority?: number }).priority, 200);
});
