import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyDefaults,
  effectiveMaxBlocksPerHost,
  FELIX_DEFAULTS,
  validatePoolOverlap,
  validateResource,
  validateUpdate,
  ValidationError,
  type IPPool,
  type Resource,
} from '../../api/index.js';
import { TabbyError } from '../../lib/errors.js';

const V3 = 'projectcalico.org/v3';

function pool(name: string, spec: Record<string, unknown>): Resource {
  return { apiVersion: V3, kind: 'IPPool', metadata: { name }, spec };
}

/** The problems validateResource reports for `obj` (fails the test when it does not throw). */
function problemsOf(obj: unknown): string[] {
  try {
    validateResource(obj);
  } catch (err) {
    assert.ok(err instanceof ValidationError, String(err));
    assert.ok(err instanceof TabbyError);
    assert.equal(err.code, 'Invalid');
    return err.problems;
  }
  assert.fail(`expected ${JSON.stringify(obj)} to be rejected`);
}

function assertProblem(obj: unknown, expected: string | RegExp): void {
  const problems = problemsOf(obj);
  const hit = problems.some((p) => (typeof expected === 'string' ? p === expected : expected.test(p)));
  assert.ok(hit, `no problem matching ${String(expected)} in:\n  ${problems.join('\n  ')}`);
}

test('IPPool defaults are Calico\'s (v4 and v6)', () => {
  const v4 = validateResource(pool('p4', { cidr: '10.244.0.0/16' }));
  assert.deepEqual(v4.spec, {
    cidr: '10.244.0.0/16',
    blockSize: 26,
    ipipMode: 'Never',
    vxlanMode: 'Never',
    natOutgoing: false,
    nodeSelector: 'all()',
    allowedUses: ['Workload', 'Tunnel'],
    assignmentMode: 'Automatic',
  });
  const v6 = validateResource(pool('p6', { cidr: 'fd00:10:244::/64' }));
  assert.equal((v6 as IPPool).spec.blockSize, 122);
  // explicit values win; empty selector means all()
  const custom = validateResource(pool('c', { cidr: '10.0.0.0/16', blockSize: 24, ipipMode: 'CrossSubnet', natOutgoing: true, nodeSelector: '' })) as IPPool;
  assert.equal(custom.spec.blockSize, 24);
  assert.equal(custom.spec.ipipMode, 'CrossSubnet');
  assert.equal(custom.spec.natOutgoing, true);
  assert.equal(custom.spec.nodeSelector, 'all()');
});

test('applyDefaults returns a new object and leaves its input alone', () => {
  const input = pool('p', { cidr: '10.0.0.0/16' });
  const before = structuredClone(input);
  const out = applyDefaults(input);
  assert.deepEqual(input, before);
  assert.notEqual(out, input);
  assert.notEqual(out.spec, input.spec);
});

test('IPAMConfiguration, BGPConfiguration, FelixConfiguration, CalicoNodeStatus defaults', () => {
  const ipam = validateResource({ apiVersion: V3, kind: 'IPAMConfiguration', metadata: { name: 'default' }, spec: {} });
  assert.deepEqual(ipam.spec, { strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0 });
  assert.equal(effectiveMaxBlocksPerHost({ maxBlocksPerHost: 0 }), 20);
  assert.equal(effectiveMaxBlocksPerHost({ maxBlocksPerHost: 4 }), 4);
  assert.equal(effectiveMaxBlocksPerHost(undefined), 20);

  const bgp = validateResource({ apiVersion: V3, kind: 'BGPConfiguration', metadata: { name: 'default' } });
  assert.deepEqual(bgp.spec, { logSeverityScreen: 'Info', nodeToNodeMeshEnabled: true, asNumber: 64512, listenPort: 179 });
  // per-node overrides stay overrides
  const perNode = validateResource({ apiVersion: V3, kind: 'BGPConfiguration', metadata: { name: 'node.node-1' }, spec: { listenPort: 1179 } });
  assert.deepEqual(perNode.spec, { listenPort: 1179 });

  const felix = validateResource({ apiVersion: V3, kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { healthPort: 9199 } });
  assert.deepEqual(felix.spec, { ...FELIX_DEFAULTS, healthPort: 9199 });
  assert.equal(FELIX_DEFAULTS.routeRefreshInterval, '90s');
  assert.equal(FELIX_DEFAULTS.prometheusMetricsPort, 9091);
  assert.equal(FELIX_DEFAULTS.interfacePrefix, 'cali');
  assert.equal(FELIX_DEFAULTS.defaultEndpointToHostAction, 'Drop');

  const cns = validateResource({ apiVersion: V3, kind: 'CalicoNodeStatus', metadata: { name: 's' }, spec: { node: 'n1', classes: ['BGP'] } });
  assert.equal((cns.spec as { updatePeriodSeconds?: number }).updatePeriodSeconds, 10);
});

// [description, object, expected problem]
const REJECTS: [string, unknown, string | RegExp][] = [
  ['unmasked pool', pool('p', { cidr: '10.0.0.1/16' }), 'spec.cidr: 10.0.0.1/16 is not a network address (did you mean 10.0.0.0/16?)'],
  ['unmasked v6 pool', pool('p', { cidr: 'fd00::1/64' }), 'spec.cidr: fd00::1/64 is not a network address (did you mean fd00::/64?)'],
  ['not a CIDR', pool('p', { cidr: '10.0.0.0' }), 'spec.cidr: "10.0.0.0" is not a CIDR like 10.244.0.0/16'],
  ['missing cidr', pool('p', {}), 'spec.cidr: is required'],
  ['link-local v4', pool('p', { cidr: '169.254.0.0/24' }), 'spec.cidr: 169.254.0.0/24 overlaps the link-local range 169.254.0.0/16'],
  ['covers link-local v4', pool('p', { cidr: '128.0.0.0/1', blockSize: 26 }), /overlaps the link-local range 169\.254\.0\.0\/16/],
  ['link-local v6', pool('p', { cidr: 'fe80::/64' }), 'spec.cidr: fe80::/64 overlaps the link-local range fe80::/10'],
  ['ipip and vxlan', pool('p', { cidr: '10.0.0.0/16', ipipMode: 'Always', vxlanMode: 'CrossSubnet' }), /^spec\.ipipMode: IPIP and VXLAN cannot both be enabled/],
  ['ipip on v6', pool('p', { cidr: 'fd00::/64', ipipMode: 'Always' }), /^spec\.ipipMode: IPIP is not supported on IPv6 pools/],
  ['v4 block too small', pool('p', { cidr: '10.0.0.0/8', blockSize: 19 }), 'spec.blockSize: 19 is out of range for an IPv4 pool (20..32)'],
  ['v4 block too large number', pool('p', { cidr: '10.0.0.0/8', blockSize: 33 }), 'spec.blockSize: 33 is out of range for an IPv4 pool (20..32)'],
  ['v6 block range', pool('p', { cidr: 'fd00::/64', blockSize: 112 }), 'spec.blockSize: 112 is out of range for an IPv6 pool (116..128)'],
  ['block bigger than pool', pool('p', { cidr: '10.0.0.0/28', blockSize: 26 }), /^spec\.blockSize: \/26 blocks do not fit in the \/28 pool/],
  ['bad encap enum', pool('p', { cidr: '10.0.0.0/16', ipipMode: 'always' }), 'spec.ipipMode: "always" is not one of Never, Always, CrossSubnet'],
  ['wrong type', pool('p', { cidr: '10.0.0.0/16', blockSize: '26' }), 'spec.blockSize: must be an integer (got "26")'],
  ['unknown field with hint', pool('p', { cidr: '10.0.0.0/16', IPIPMode: 'Always' }), 'spec.IPIPMode: unknown field (did you mean ipipMode?)'],
  ['bad node selector', pool('p', { cidr: '10.0.0.0/16', nodeSelector: 'a ==' }), /^spec\.nodeSelector: invalid selector "a ==": .* at position 4$/],
  ['global() node selector', pool('p', { cidr: '10.0.0.0/16', nodeSelector: 'global()' }), 'spec.nodeSelector: global() is not allowed here'],
  ['LoadBalancer mixed', pool('p', { cidr: '10.0.0.0/16', allowedUses: ['LoadBalancer', 'Workload'] }), 'spec.allowedUses: LoadBalancer cannot be combined with Workload or Tunnel'],
  ['bad allowed use', pool('p', { cidr: '10.0.0.0/16', allowedUses: ['Pods'] }), 'spec.allowedUses[0]: "Pods" is not one of Workload, Tunnel, LoadBalancer'],
  ['bad name', pool('My_Pool', { cidr: '10.0.0.0/16' }), /^metadata\.name: "My_Pool" must be lower-case/],
  ['missing name', { apiVersion: V3, kind: 'IPPool', metadata: {}, spec: { cidr: '10.0.0.0/16' } }, 'metadata.name: is required'],
  ['namespace on cluster kind', { apiVersion: V3, kind: 'IPPool', metadata: { name: 'p', namespace: 'x' }, spec: { cidr: '10.0.0.0/16' } }, 'metadata.namespace: IPPool is cluster-scoped; remove the namespace'],
  ['wrong apiVersion', { apiVersion: 'v1', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/16' } }, 'apiVersion: "v1" is not supported for IPPool (use projectcalico.org/v3)'],
  ['v1 apiVersion on a user kind', { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/16' } }, /^apiVersion: "crd\.projectcalico\.org\/v1" is not supported for IPPool/],
  ['missing apiVersion', { kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/16' } }, /^apiVersion: is required/],
  ['unknown kind', { apiVersion: V3, kind: 'IPPoool', metadata: { name: 'p' }, spec: {} }, /^kind: unknown kind "IPPoool"; known kinds: IPPool, /],
  ['kind in wrong case', { apiVersion: V3, kind: 'ippool', metadata: { name: 'p' }, spec: {} }, /^kind: unknown kind "ippool" \(did you mean IPPool\?\)/],
  ['not an object', 'IPPool', /^\(object\): must be an object/],
  ['unknown top-level field', { apiVersion: V3, kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/16' }, extra: 1 }, 'extra: unknown field'],
  ['IPAMConfiguration name', { apiVersion: V3, kind: 'IPAMConfiguration', metadata: { name: 'x' }, spec: {} }, 'metadata.name: IPAMConfiguration is a singleton and must be named "default"'],
  ['strict without auto-allocate', { apiVersion: V3, kind: 'IPAMConfiguration', metadata: { name: 'default' }, spec: { strictAffinity: true, autoAllocateBlocks: false } }, /^spec\.autoAllocateBlocks: cannot be false while strictAffinity is true/],
  ['maxBlocksPerHost negative', { apiVersion: V3, kind: 'IPAMConfiguration', metadata: { name: 'default' }, spec: { maxBlocksPerHost: -1 } }, 'spec.maxBlocksPerHost: -1 is below the minimum 0'],
  ['bgp port', { apiVersion: V3, kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { listenPort: 70000 } }, 'spec.listenPort: 70000 is above the maximum 65535'],
  ['bgp asNumber', { apiVersion: V3, kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { asNumber: 4294967296 } }, 'spec.asNumber: 4294967296 is above the maximum 4294967295'],
  ['bgp service cidr unmasked', { apiVersion: V3, kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { serviceClusterIPs: [{ cidr: '10.96.0.1/12' }] } }, /^spec\.serviceClusterIPs\[0\]\.cidr: 10\.96\.0\.1\/12 is not a network address/],
  ['peer IP', { apiVersion: V3, kind: 'BGPPeer', metadata: { name: 'p' }, spec: { peerIP: '10.0.0.300', asNumber: 65000 } }, 'spec.peerIP: "10.0.0.300" is not an IP, IP:port or [IPv6]:port'],
  ['peer node + nodeSelector', { apiVersion: V3, kind: 'BGPPeer', metadata: { name: 'p' }, spec: { node: 'a', nodeSelector: 'all()', peerIP: '10.0.0.1' } }, 'spec.nodeSelector: cannot be combined with spec.node (pick one)'],
  ['peer selector', { apiVersion: V3, kind: 'BGPPeer', metadata: { name: 'p' }, spec: { peerSelector: "rr == 'true" } }, /^spec\.peerSelector: invalid selector/],
  ['filter action', { apiVersion: V3, kind: 'BGPFilter', metadata: { name: 'f' }, spec: { exportV4: [{ cidr: '10.0.0.0/8' }] } }, 'spec.exportV4[0].action: is required'],
  ['felix duration', { apiVersion: V3, kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { routeRefreshInterval: '90' } }, /^spec\.routeRefreshInterval: "90" is not a duration like 90s/],
  ['felix port range', { apiVersion: V3, kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { natPortRange: '2000:1000' } }, 'spec.natPortRange: "2000:1000" is not a port or a range like 32768:65535'],
  ['felix natOutgoingAddress', { apiVersion: V3, kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { natOutgoingAddress: 'host' } }, 'spec.natOutgoingAddress: "host" is not an IP address'],
  ['node ipv4Address family', { apiVersion: V3, kind: 'Node', metadata: { name: 'n' }, spec: { bgp: { ipv4Address: 'fd00::5/64' } } }, 'spec.bgp.ipv4Address: fd00::5/64 is not an IPv4 address'],
  ['node mac', { apiVersion: V3, kind: 'Node', metadata: { name: 'n' }, spec: { vxlanTunnelMACAddr: 'zz' } }, 'spec.vxlanTunnelMACAddr: "zz" is not a MAC address like ee:ee:ee:ee:ee:ee'],
  ['wep interface name', { apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { name: 'w', namespace: 'default' }, spec: { interfaceName: 'cali0123456789abcdef' } }, /^spec\.interfaceName: .* is longer than 15 characters$/],
  ['wep network', { apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { name: 'w' }, spec: { ipNetworks: ['10.244.1.5'] } }, 'spec.ipNetworks[0]: "10.244.1.5" is not a CIDR like 10.244.0.0/16'],
  ['status on a status-less kind', { apiVersion: V3, kind: 'BGPPeer', metadata: { name: 'p' }, spec: {}, status: {} }, 'status: unknown field'],
  ['affinity deleted as bool', { apiVersion: 'crd.projectcalico.org/v1', kind: 'BlockAffinity', metadata: { name: 'a' }, spec: { cidr: '10.0.0.0/26', node: 'n', state: 'confirmed', deleted: false } }, 'spec.deleted: must be a string (got false)'],
  ['affinity deleted value', { apiVersion: 'crd.projectcalico.org/v1', kind: 'BlockAffinity', metadata: { name: 'a' }, spec: { cidr: '10.0.0.0/26', node: 'n', state: 'confirmed', deleted: 'yes' } }, /^spec\.deleted: "yes" must be "true" or "false"/],
  ['affinity state', { apiVersion: 'crd.projectcalico.org/v1', kind: 'BlockAffinity', metadata: { name: 'a' }, spec: { cidr: '10.0.0.0/26', node: 'n', state: 'done', deleted: 'false' } }, 'spec.state: "done" is not one of "", pending, confirmed, pendingDeletion'],
  ['block allocations size', { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMBlock', metadata: { name: 'b' }, spec: { cidr: '10.0.0.0/30', allocations: [null], unallocated: [], attributes: [], strictAffinity: false } }, 'spec.allocations: has 1 entries but a /30 block has 4 addresses'],
  ['block allocation index', { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMBlock', metadata: { name: 'b' }, spec: { cidr: '10.0.0.0/31', allocations: [0, null], unallocated: [1], attributes: [], strictAffinity: false } }, 'spec.allocations[0]: 0 is not an index into attributes (0 entries)'],
  ['handle block key', { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMHandle', metadata: { name: 'h' }, spec: { handleID: 'h', block: { nope: 1 } } }, 'spec.block["nope"]: key is not a block CIDR'],
];

for (const [what, obj, expected] of REJECTS) {
  test(`rejects: ${what}`, () => assertProblem(obj, expected));
}

test('all problems of one object are reported together', () => {
  const problems = problemsOf(pool('p', { cidr: '10.0.0.1/16', blockSize: 40, natOutgoing: 'yes' }));
  assert.ok(problems.length >= 3, problems.join('\n'));
  assert.ok(problems.every((p) => /^[a-zA-Z]/.test(p) && p.includes(': ')));
});

test('valid objects of every kind pass', () => {
  const ok: unknown[] = [
    pool('default-ipv4-ippool', { cidr: '192.168.0.0/16', ipipMode: 'Always', natOutgoing: true, nodeSelector: "kubernetes.io/os == 'linux'" }),
    pool('v6', { cidr: 'fd00:10:244::/48', vxlanMode: 'Always', blockSize: 122 }),
    pool('lb', { cidr: '10.100.0.0/24', allowedUses: ['LoadBalancer'] }),
    { apiVersion: V3, kind: 'BGPPeer', metadata: { name: 'rr' }, spec: { nodeSelector: "!has(rr)", peerSelector: 'has(rr)' } },
    { apiVersion: V3, kind: 'BGPPeer', metadata: { name: 'tor' }, spec: { peerIP: '[fd00::1]:1179', asNumber: 65001, node: 'node-1', password: { secretKeyRef: { name: 's', key: 'k' } }, keepaliveTime: '30s' } },
    { apiVersion: V3, kind: 'BGPFilter', metadata: { name: 'f' }, spec: { exportV4: [{ action: 'Reject', cidr: '10.0.0.0/8', matchOperator: 'In' }] } },
    { apiVersion: V3, kind: 'FelixConfiguration', metadata: { name: 'node.node-1' }, spec: { natPortRange: '32768:65535', vxlanMTU: 1450, ipipEnabled: false } },
    { apiVersion: V3, kind: 'ClusterInformation', metadata: { name: 'default' }, spec: { clusterGUID: 'abc', datastoreReady: true, calicoVersion: 'v3.30.0' } },
    { apiVersion: V3, kind: 'Node', metadata: { name: 'node-1' }, spec: { bgp: { ipv4Address: '10.0.0.5/24', asNumber: 64513, ipv4IPIPTunnelAddr: '10.244.1.0', routeReflectorClusterID: '224.0.0.1' }, ipv4VXLANTunnelAddr: '10.244.1.1', vxlanTunnelMACAddr: '66:2e:9b:a4:71:0c' }, status: { podCIDRs: ['10.244.1.0/24'] } },
    { apiVersion: V3, kind: 'CalicoNodeStatus', metadata: { name: 'node-1' }, spec: { node: 'node-1', classes: ['Agent', 'BGP', 'Routes'] }, status: { bgp: { numberEstablishedV4: 1, peersV4: [{ peerIP: '10.0.0.6', type: 'NodeMesh', state: 'Established', since: '2026-11-20T10:00:00Z' }] } } },
    { apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { name: 'node--1-k8s-nginx-eth0', namespace: 'default', labels: { app: 'nginx' } }, spec: { orchestrator: 'k8s', node: 'node-1', pod: 'nginx', endpoint: 'eth0', containerID: 'abc', interfaceName: 'cali1234567890a', mac: 'ee:ee:ee:ee:ee:ee', ipNetworks: ['10.244.1.5/32'], profiles: ['kns.default'] } },
    { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMConfig', metadata: { name: 'default' }, spec: { strictAffinity: false, autoAllocateBlocks: true } },
  ];
  for (const o of ok) assert.doesNotThrow(() => validateResource(o), JSON.stringify(o));
});

test('v1 IPAMConfig is read as the v3 IPAMConfiguration', () => {
  const r = validateResource({ apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMConfig', metadata: { name: 'default' }, spec: { strictAffinity: true, autoAllocateBlocks: true, maxBlocksPerHost: 4 } });
  assert.equal(r.kind, 'IPAMConfiguration');
  assert.equal(r.apiVersion, V3);
  assert.deepEqual(r.spec, { strictAffinity: true, autoAllocateBlocks: true, maxBlocksPerHost: 4 });
  assertProblem({ apiVersion: V3, kind: 'IPAMConfig', metadata: { name: 'default' }, spec: {} }, /^kind: IPAMConfig is the crd\.projectcalico\.org\/v1 storage name/);
});

test('WorkloadEndpoint gets the default namespace', () => {
  const r = validateResource({ apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { name: 'w' }, spec: {} });
  assert.equal(r.metadata.namespace, 'default');
});

test('validateUpdate: IPPool cidr and blockSize are immutable', () => {
  const old = validateResource(pool('p', { cidr: '10.0.0.0/16' }));
  const ok = validateUpdate(old, pool('p', { cidr: '10.0.0.0/16', natOutgoing: true, disabled: true }));
  assert.equal((ok as IPPool).spec.natOutgoing, true);
  // a stored pool without explicit blockSize compares by its default
  assert.doesNotThrow(() => validateUpdate(pool('p', { cidr: '10.0.0.0/16' }), pool('p', { cidr: '10.0.0.0/16', blockSize: 26 })));
  assert.throws(
    () => validateUpdate(old, pool('p', { cidr: '10.1.0.0/16' })),
    (e: unknown) => e instanceof ValidationError && e.problems[0] === 'spec.cidr: is immutable (was 10.0.0.0/16, now 10.1.0.0/16); create a new IPPool instead',
  );
  assert.throws(
    () => validateUpdate(old, pool('p', { cidr: '10.0.0.0/16', blockSize: 24 })),
    (e: unknown) => e instanceof ValidationError && e.problems.some((p) => p.startsWith('spec.blockSize: is immutable (was 26, now 24)')),
  );
  assert.throws(() => validateUpdate(old, pool('q', { cidr: '10.0.0.0/16' })), /metadata\.name: cannot change/);
  // next is validated too
  assert.throws(() => validateUpdate(old, pool('p', { cidr: '10.0.0.1/16' })), /is not a network address/);
});

test('validatePoolOverlap names the other pool', () => {
  const a = validateResource(pool('a', { cidr: '10.0.0.0/16' })) as IPPool;
  const b = validateResource(pool('b', { cidr: '10.0.128.0/17' })) as IPPool;
  const c = validateResource(pool('c', { cidr: '10.1.0.0/16' })) as IPPool;
  const v6 = validateResource(pool('v6', { cidr: 'fd00::/8' })) as IPPool;
  assert.doesNotThrow(() => validatePoolOverlap(c, [a, v6]));
  assert.doesNotThrow(() => validatePoolOverlap(a, [a])); // the pool itself (update) is skipped
  assert.throws(
    () => validatePoolOverlap(b, [a, c, v6]),
    (e: unknown) =>
      e instanceof ValidationError &&
      e.problems.length === 1 &&
      e.problems[0] === 'spec.cidr: 10.0.128.0/17 overlaps IPPool "a" (10.0.0.0/16); pools must not overlap',
  );
  const big = validateResource(pool('big', { cidr: '10.0.0.0/8', blockSize: 26 })) as IPPool;
  assert.throws(() => validatePoolOverlap(big, [a, b, c]), (e: unknown) => e instanceof ValidationError && e.problems.length === 3);
});
