import { test } from 'node:test';
import assert from 'node:assert/strict';
import { communityAdvertisements, configAdvertisements, isCommunityValue, mergeOriginate, serviceAdvertisements, serviceHostRoutes, type EndpointsView, type ServiceView } from '../../node/advertise.js';
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

test('serviceHostRoutes: Calico route-generator rules for per-service /32s and /128s', () => {
  const spec = {
    serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
    serviceExternalIPs: [{ cidr: '192.0.2.0/24' }, { cidr: '198.51.100.9/32' }],
    serviceLoadBalancerIPs: [{ cidr: '203.0.113.0/24' }, { cidr: '203.0.114.7/32' }],
  };
  const svc = (name: string, extra: Partial<ServiceView>): ServiceView => ({ namespace: 'default', name, type: 'ClusterIP', clusterIP: '10.96.0.10', ...extra });
  const ep = (name: string, ...addresses: Array<{ ip: string; nodeName?: string }>): EndpointsView => ({ namespace: 'default', name, addresses });
  const services = [
    svc('local-here', { clusterIP: '10.96.0.10', externalTrafficPolicy: 'Local', type: 'LoadBalancer', externalIPs: ['192.0.2.5', '10.0.0.1'], loadBalancerIngressIPs: ['203.0.113.5', '1.2.3.4'] }),
    svc('local-elsewhere', { clusterIP: '10.96.0.11', externalTrafficPolicy: 'Local' }),
    svc('local-v6-endpoint-only', { clusterIP: '10.96.0.12', externalTrafficPolicy: 'Local' }),
    svc('cluster-plain', { clusterIP: '10.96.0.13' }),
    svc('cluster-single-ext', { clusterIP: '10.96.0.14', externalIPs: ['198.51.100.9'] }),
    svc('cluster-single-lb', { clusterIP: '10.96.0.15', type: 'LoadBalancer', loadBalancerIngressIPs: ['203.0.114.7'] }),
    svc('headless', { clusterIP: 'None', externalTrafficPolicy: 'Local' }),
    svc('external-name', { type: 'ExternalName', externalTrafficPolicy: 'Local' }),
    svc('v6-local', { clusterIP: 'fd00:96::10', externalTrafficPolicy: 'Local' }),
  ];
  const endpoints = [
    ep('local-here', { ip: '10.244.1.5', nodeName: 'node-a' }),
    ep('local-elsewhere', { ip: '10.244.2.5', nodeName: 'node-b' }),
    ep('local-v6-endpoint-only', { ip: 'fd00:244::5', nodeName: 'node-a' }),
    ep('headless', { ip: '10.244.1.6', nodeName: 'node-a' }),
    ep('external-name', { ip: '10.244.1.7', nodeName: 'node-a' }),
    ep('v6-local', { ip: 'fd00:244::6', nodeName: 'node-a' }),
  ];
  assert.deepEqual(serviceHostRoutes('node-a', spec, services, endpoints), [
    '10.96.0.10/32',
    '10.96.0.14/32',
    '10.96.0.15/32',
    '192.0.2.5/32',
    '198.51.100.9/32',
    '203.0.113.5/32',
    '203.0.114.7/32',
    'fd00:96::10/128',
  ]);
  // Without serviceClusterIPs no cluster IP is advertised; without any service range nothing is.
  assert.deepEqual(serviceHostRoutes('node-a', { serviceExternalIPs: spec.serviceExternalIPs }, services, endpoints), ['192.0.2.5/32', '198.51.100.9/32']);
  assert.deepEqual(serviceHostRoutes('node-a', {}, services, endpoints), []);
  assert.deepEqual(serviceHostRoutes('node-b', spec, services, endpoints), ['10.96.0.11/32', '10.96.0.14/32', '10.96.0.15/32', '198.51.100.9/32', '203.0.114.7/32']);
});
