import { test } from 'node:test';
import assert from 'node:assert/strict';
import { communityAdvertisements, configAdvertisements, isCommunityValue, mergeOriginate, serviceAdvertisements } from '../../node/advertise.js';
import { PrefixAdvertisements } from '../../bgp/policy/filter.js';

test('service CIDRs: cluster, external and load-balancer ranges, canonical and de-duplicated', () => {
  assert.deepEqual(
    serviceAdvertisements({
      serviceClusterIPs: [{ cidr: '10.96.0.0/12' }, { cidr: 'fd00:96::/112' }],
      serviceExternalIPs: [{ cidr: '192.0.2.0/24' }, { cidr: '10.96.0.0/12' }],
      serviceLoadBalancerIPs: [{ cidr: '198.51.100.7/32' }],
    }),
    ['10.96.0.0/12', 'fd00:96::/112', '192.0.2.0/24', '198.51.100.7/32'],
  );
  assert.deepEqual(serviceAdvertisements(undefined), []);
  assert.deepEqual(serviceAdvertisements({}), []);
  const problems: string[] = [];
  assert.deepEqual(serviceAdvertisements({ serviceClusterIPs: [{ cidr: 'nope' }, { cidr: '10.96.0.0/16' }] }, problems), ['10.96.0.0/16']);
  assert.deepEqual(problems, ['serviceClusterIPs[0]: "nope" is not a CIDR']);
});

test('community values: a:b with 16-bit parts, a:b:c with 32-bit parts', () => {
  for (const ok of ['65000:100', '0:0', '65535:65535', '4200000000:1:2']) assert.equal(isCommunityValue(ok), true, ok);
  for (const bad of ['65536:1', '1', 'a:b', '1:2:3:4', '4294967296:1:1', '']) assert.equal(isCommunityValue(bad), false, bad);
});

test('prefixAdvertisements: names resolved through communities[], literals kept, unknown names reported', () => {
  const problems: string[] = [];
  const ads = communityAdvertisements(
    {
      communities: [
        { name: 'svc', value: '65000:300' },
        { name: 'big', value: '65000:1:2' },
        { name: 'broken', value: '70000:1' },
      ],
      prefixAdvertisements: [
        { cidr: '10.96.0.0/12', communities: ['svc', '65000:301', 'svc'] },
        { cidr: '10.244.1.0/24', communities: ['big', 'nosuch', 'broken'] },
        { cidr: '10.245.0.0/16', communities: ['nosuch'] },
        { cidr: '10.1.2.3/16', communities: ['svc'] },
      ],
    },
    problems,
  );
  assert.deepEqual(ads, [
    { cidr: '10.96.0.0/12', communities: ['65000:300', '65000:301'] },
    { cidr: '10.244.1.0/24', communities: ['65000:1:2'] },
    { cidr: '10.1.0.0/16', communities: ['65000:300'] },
  ]);
  assert.deepEqual(problems, [
    'communities: "broken" has an invalid value "70000:1"',
    'prefixAdvertisements[1]: community "nosuch" is neither a name in communities nor a value a:b / a:b:c',
    'prefixAdvertisements[1]: community "broken" is neither a name in communities nor a value a:b / a:b:c',
    'prefixAdvertisements[2]: community "nosuch" is neither a name in communities nor a value a:b / a:b:c',
  ]);
});

test('the resolved advertisements are what the speaker attaches to exported prefixes inside each CIDR', () => {
  const { services, communities, problems } = configAdvertisements({
    serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
    communities: [{ name: 'svc', value: '65000:300' }],
    prefixAdvertisements: [{ cidr: '10.96.0.0/12', communities: ['svc', '65000:7:8'] }],
  });
  assert.deepEqual(problems, []);
  const pa = new PrefixAdvertisements(communities);
  const base = { origin: 0 as const, asPath: [] };
  const svc = pa.apply(services[0]!, base);
  assert.deepEqual(svc.communities, [65000 * 65536 + 300]);
  assert.deepEqual(svc.largeCommunities, [[65000, 7, 8]]);
  assert.equal(pa.apply('10.244.0.0/26', base), base, 'a block outside the CIDR is untouched');
});

test('mergeOriginate appends service CIDRs that are not block exports already', () => {
  assert.deepEqual(mergeOriginate(['10.244.0.0/26', '10.244.1.5/32'], ['10.96.0.0/12', '10.244.0.0/26']), ['10.244.0.0/26', '10.244.1.5/32', '10.96.0.0/12']);
});
