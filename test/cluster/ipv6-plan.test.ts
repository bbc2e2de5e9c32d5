/** cluster/plan.ts with `ipv6: true` (the dual-stack e2e and `tabbyctl cluster up --ipv6`). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateResource } from '../../api/validate.js';
import { parseManifest } from '../../ctl/manifest.js';
import { birdConfig, birdProtocolName6, clusterManifests, cniNetconf, defaultOptions, makePlan, nodeEnv, nodeManifests, sameShape } from '../../cluster/plan.js';

test('ipv6 off (default): no IPv6 anywhere in the plan', () => {
  const plan = makePlan(defaultOptions());
  assert.equal(plan.options.ipv6, false);
  assert.equal(plan.torIp6A, undefined);
  assert.ok(plan.nodes.every((n) => n.ip6 === undefined));
  assert.doesNotMatch(birdConfig(plan), /ipv6/);
  assert.equal(nodeEnv(plan, plan.nodes[0]!).IP6, undefined);
  assert.equal((cniNetconf(plan, plan.nodes[0]!).ipam as Record<string, string>).assign_ipv6, 'false');
});

test('ipv6 on: node and ToR addresses per subnet, IP6 + pool env, assign_ipv6, a v6 BGP session per node', () => {
  const o = defaultOptions({ ipv6: true, encap: 'vxlan' });
  const plan = makePlan(o);
  assert.deepEqual(plan.nodes.map((n) => [n.ip6, n.gateway6]), [
    ['fd00:7ab:0:a::11', 'fd00:7ab:0:a::1'],
    ['fd00:7ab:0:b::12', 'fd00:7ab:0:b::1'],
    ['fd00:7ab:0:a::13', 'fd00:7ab:0:a::1'],
  ]);
  assert.equal(plan.torIp6A, 'fd00:7ab:0:a::1');
  const n1 = plan.nodes[0]!;
  const env = nodeEnv(plan, n1);
  assert.equal(env.IP6, 'fd00:7ab:0:a::11/64');
  assert.equal(env.CALICO_IPV6POOL_CIDR, 'fd00:10:244::/48');
  assert.equal(env.CALICO_IPV6POOL_BLOCK_SIZE, '122');
  assert.equal(env.FELIX_IPV6SUPPORT, 'true');
  assert.equal(env.CALICO_IPV6POOL_VXLAN, 'CrossSubnet', 'the IPv6 pool follows --encap vxlan');
  assert.equal((cniNetconf(plan, n1).ipam as Record<string, string>).assign_ipv6, 'true');
  const bird = birdConfig(plan);
  assert.match(bird, /protocol direct \{ ipv4; ipv6; interface "eth\*"; \}/);
  assert.match(bird, new RegExp(`protocol bgp ${birdProtocolName6(n1)} \\{ local as 64512; passive on; neighbor fd00:7ab:0:a::11 as 64512; source address fd00:7ab:0:a::1;.* ipv6 \\{ import all; export none; \\}; \\}`));
  const docs = parseManifest(clusterManifests(plan)).map((d) => validateResource(d.resource) as unknown as { metadata: { name: string }; spec?: unknown });
  assert.deepEqual(docs.find((d) => d.metadata.name === 'tor-v6')?.spec, { peerIP: 'fd00:7ab:0:a::1', asNumber: 64512 });
  const nodes = parseManifest(nodeManifests(plan)).map((d) => validateResource(d.resource));
  assert.equal(nodes.length, 3);
  assert.match(nodeManifests(plan), /ipv6Address: fd00:7ab:0:a::11\/64/);
  assert.equal(sameShape(o, { ...o, ipv6: false }), false, 'a v4-only cluster is another shape');
});
