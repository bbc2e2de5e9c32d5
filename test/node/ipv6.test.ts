/**
 * IPv6 in tabby-node (issue 6, dual stack): IP6 / IP6_AUTODETECTION_METHOD / CALICO_IPV6POOL_* /
 * FELIX_IPV6SUPPORT parsing, IPv6 autodetection, Node registration with bgp.ipv6Address, the default
 * IPv6 pool, and the BGP plan's IPv6 sessions (IPv6 exports: bgp-config.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDatastore } from '../../datastore/memory.js';
import { silentLogger } from '../../lib/log.js';
import { NodeConfigError, parseNodeConfig } from '../../node/config.js';
import { AutodetectError, chooseAddress, interfaceHolding } from '../../node/autodetect.js';
import { inputsFromResources } from '../../felix/resources.js';
import { calculate } from '../../felix/calc.js';
import { podMtu, registerNode, runStartup } from '../../node/startup.js';
import { ensureTunnelAddresses } from '../../node/tunnel.js';
import { Ipam } from '../../ipam/ipam.js';
import { computeBgpPlan, type BgpInputs } from '../../node/bgp-config.js';
import { formatNodeStatus, type NodeStatusSnapshot } from '../../node/status.js';
import { NodeAgent, type DataplaneView, type SpeakerConfigLike, type SpeakerLike } from '../../node/agent.js';
import type { BGPPeer, IPAMHandle, IPPool, Node } from '../../api/types.js';

const ENV = { NODENAME: 'n1', DATASTORE_TYPE: 'memory' };

test('config: IP6 defaults to none, accepts autodetect / address / CIDR, rejects IPv4', () => {
  const d = parseNodeConfig(ENV);
  assert.deepEqual(d.ip6, { mode: 'none' });
  assert.equal(d.felix.ipv6Support, false);
  assert.equal(d.defaultPool6, undefined);
  assert.deepEqual(parseNodeConfig({ ...ENV, IP6: 'autodetect' }).ip6, { mode: 'autodetect' });
  assert.deepEqual(parseNodeConfig({ ...ENV, IP6: 'fd00:0::5' }).ip6, { mode: 'static', address: 'fd00::5' });
  const c = parseNodeConfig({ ...ENV, IP6: 'fd00::5/64' });
  assert.deepEqual(c.ip6, { mode: 'static', address: 'fd00::5', prefix: 64 });
  assert.equal(c.felix.ipv6Support, true, 'FELIX_IPV6SUPPORT follows IP6 by default');
  assert.equal(parseNodeConfig({ ...ENV, IP6: 'fd00::5/64', FELIX_IPV6SUPPORT: 'false' }).felix.ipv6Support, false);
  for (const bad of ['10.0.0.5', '10.0.0.5/24', 'fd00::/129', 'nope']) {
    assert.throws(() => parseNodeConfig({ ...ENV, IP6: bad }), (e: unknown) => e instanceof NodeConfigError && e.variable === 'IP6', bad);
  }
  // IP keeps rejecting IPv6.
  assert.throws(() => parseNodeConfig({ ...ENV, IP: 'fd00::1' }), (e: unknown) => e instanceof NodeConfigError && e.variable === 'IP');
  assert.deepEqual(parseNodeConfig({ ...ENV, IP6_AUTODETECTION_METHOD: 'interface=eth.*' }).autodetect6, { kind: 'interface', patterns: ['eth.*'] });
  assert.throws(() => parseNodeConfig({ ...ENV, IP6_AUTODETECTION_METHOD: 'bogus' }), (e: unknown) => e instanceof NodeConfigError && e.variable === 'IP6_AUTODETECTION_METHOD');
});

test('config: the default IPv6 pool only when CALICO_IPV6POOL_CIDR is set; block size, NAT, VXLAN, FELIX_VXLANMTUV6', () => {
  const c = parseNodeConfig({ ...ENV, CALICO_IPV6POOL_CIDR: 'fd00:10:244:0::/48' });
  assert.deepEqual(c.defaultPool6, { cidr: 'fd00:10:244::/48', blockSize: 122, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, nodeSelector: 'all()' });
  const d = parseNodeConfig({ ...ENV, CALICO_IPV6POOL_CIDR: 'fd00:10:244::/48', CALICO_IPV6POOL_BLOCK_SIZE: '120', CALICO_IPV6POOL_NAT_OUTGOING: 'true', CALICO_IPV6POOL_VXLAN: 'Never' });
  assert.equal(d.defaultPool6?.blockSize, 120);
  assert.equal(d.defaultPool6?.natOutgoing, true);
  assert.equal(parseNodeConfig({ ...ENV, CALICO_IPV6POOL_CIDR: 'fd00::/48', CALICO_IPV6POOL_VXLAN: 'CrossSubnet' }).defaultPool6?.vxlanMode, 'CrossSubnet');
  assert.equal(parseNodeConfig({ ...ENV, FELIX_VXLANMTUV6: '1400' }).felix.vxlanMTUV6, 1400);
  const bad: Array<[Record<string, string>, string]> = [
    [{ CALICO_IPV6POOL_CIDR: '10.0.0.0/8' }, 'CALICO_IPV6POOL_CIDR'],
    [{ CALICO_IPV6POOL_CIDR: 'fd00::/48', CALICO_IPV6POOL_BLOCK_SIZE: '112' }, 'CALICO_IPV6POOL_BLOCK_SIZE'],
    [{ CALICO_IPV6POOL_CIDR: 'fd00::/120', CALICO_IPV6POOL_BLOCK_SIZE: '116' }, 'CALICO_IPV6POOL_BLOCK_SIZE'],
    [{ CALICO_IPV6POOL_CIDR: 'fd00::/48', CALICO_IPV6POOL_VXLAN: 'Sometimes' }, 'CALICO_IPV6POOL_VXLAN'],
    [{ FELIX_VXLANMTUV6: 'big' }, 'FELIX_VXLANMTUV6'],
    [{ CALICO_IPV6POOL_CIDR: 'fd00::/48', CALICO_IPV6POOL_NAT_OUTGOING: 'maybe' }, 'CALICO_IPV6POOL_NAT_OUTGOING'],
  ];
  for (const [env, variable] of bad) {
    assert.throws(() => parseNodeConfig({ ...ENV, ...env }), (e: unknown) => e instanceof NodeConfigError && e.variable === variable, JSON.stringify(env));
  }
  assert.equal(parseNodeConfig({ ...ENV, CALICO_IPV6POOL_CIDR: 'fd00::/48', NO_DEFAULT_POOLS: 'true' }).defaultPool6, undefined);
});

test('autodetect IPv6: skips link-local and loopback, honours cidr=, explains itself', () => {
  const ifaces = [
    { name: 'lo', up: true, addresses: ['127.0.0.1/8', '::1/128'] },
    { name: 'eth0', up: true, addresses: ['10.0.0.5/24', 'fe80::1/64'] },
    { name: 'eth1', up: true, addresses: ['10.1.0.5/24', 'fd00:1::5/64', 'fe80::2/64'] },
    { name: 'eth2', up: true, addresses: ['fd00:2::5/64'] },
  ];
  const d = chooseAddress({ kind: 'first-found' }, ifaces, undefined, 6);
  assert.equal(d.cidr, 'fd00:1::5/64');
  assert.equal(d.interface, 'eth1');
  assert.ok(d.explanation.some((l) => l.startsWith('eth0: skipped (no usable IPv6 address: fe80::1/64 link-local')), d.explanation.join('\n'));
  assert.equal(chooseAddress({ kind: 'cidr', cidrs: ['fd00:2::/64'] }, ifaces, undefined, 6).cidr, 'fd00:2::5/64');
  assert.equal(chooseAddress({ kind: 'can-reach', destination: 'fd00:2::1' }, ifaces, 'fd00:2::5', 6).interface, 'eth2');
  // The IPv4 choice is unchanged by the IPv6 addresses.
  assert.equal(chooseAddress({ kind: 'first-found' }, ifaces).cidr, '10.0.0.5/24');
  assert.throws(() => chooseAddress({ kind: 'interface', patterns: ['^eth0$'] }, ifaces, undefined, 6), (e: unknown) => e instanceof AutodetectError && /IP6 autodetection/.test(e.message) && /IP6=/.test(e.hint ?? ''));
});

test('startup: Node gets bgp.ipv6Address and a CalicoNodeIP per family; default IPv6 pool created once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 't6-startup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  const cfg = parseNodeConfig({
    ...ENV,
    IP: '10.0.0.5/24',
    IP6: 'autodetect',
    CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
    CALICO_IPV6POOL_CIDR: 'fd00:10:244::/48',
    TABBY_RUN_DIR: join(dir, 'run'),
    TABBY_LIB_DIR: join(dir, 'lib'),
  });
  const det6 = { cidr: 'fd00::5/64', address: 'fd00::5', interface: 'eth0', method: 'first-found', explanation: ['eth0: chosen fd00::5/64'] };
  const res = await runStartup(cfg, { ds, log: silentLogger(), detect: async () => assert.fail('static IPv4'), detect6: async () => det6, hostMtu: async () => 1500 });
  assert.equal(res.node.spec?.bgp?.ipv4Address, '10.0.0.5/24');
  assert.equal(res.node.spec?.bgp?.ipv6Address, 'fd00::5/64');
  assert.deepEqual(res.node.spec?.addresses, [{ address: '10.0.0.5', type: 'CalicoNodeIP' }, { address: 'fd00::5', type: 'CalicoNodeIP' }]);
  assert.match(res.ipSource6, /autodetected: fd00::5\/64 on eth0/);
  assert.deepEqual(res.detection6, det6);
  const pools = (await ds.list<IPPool>('IPPool')).items.map((p) => [p.metadata.name, p.spec.cidr, p.spec.blockSize, p.spec.natOutgoing, p.spec.ipipMode]).sort();
  assert.deepEqual(pools, [
    ['default-ipv4-ippool', '10.244.0.0/16', 26, true, 'Never'],
    ['default-ipv6-ippool', 'fd00:10:244::/48', 122, false, undefined],
  ]);
  assert.equal(await readFile(join(dir, 'lib', 'mtu'), 'utf8'), '1500\n', 'the MTU file is unchanged by IPv6');
  // A second node with its own IPv6 pool setting does not add a pool: one IPv6 pool exists.
  const res2 = await runStartup(
    parseNodeConfig({ NODENAME: 'n2', DATASTORE_TYPE: 'memory', IP: '10.0.0.6/24', IP6: 'fd00::6', CALICO_IPV6POOL_CIDR: 'fd00:99::/48', TABBY_LIB_DIR: join(dir, 'lib2') }),
    { ds, log: silentLogger(), detect: async () => assert.fail('static') },
  );
  assert.equal(res2.pool6, undefined);
  assert.equal(res2.node.spec?.bgp?.ipv6Address, 'fd00::6/128');
  assert.equal((await ds.list<IPPool>('IPPool')).items.length, 2);
  // IP6=autodetect without a detector is an error that names the fix.
  await assert.rejects(
    runStartup(parseNodeConfig({ NODENAME: 'n3', DATASTORE_TYPE: 'memory', IP: 'none', IP6: 'autodetect', TABBY_LIB_DIR: join(dir, 'lib3') }), { ds, log: silentLogger(), detect: async () => assert.fail('none') }),
    /IP6=autodetect/,
  );
});

test('registerNode: IP6=none on restart removes a stale bgp.ipv6Address and its CalicoNodeIP', async () => {
  const ds = new MemoryDatastore();
  await registerNode(ds, { nodeName: 'n1', ipv4Cidr: '10.0.0.5/24', ipv6Cidr: 'fd00::5/64' });
  const again = await registerNode(ds, { nodeName: 'n1', ipv4Cidr: '10.0.0.5/24' });
  assert.equal(again.spec?.bgp?.ipv6Address, undefined);
  assert.deepEqual(again.spec?.addresses, [{ address: '10.0.0.5', type: 'CalicoNodeIP' }]);
});

function node(name: string, v4: string | undefined, v6: string | undefined, labels: Record<string, string> = {}): Node {
  const bgp: NonNullable<Node['spec']>['bgp'] = {};
  if (v4) bgp.ipv4Address = `${v4}/24`;
  if (v6) bgp.ipv6Address = `${v6}/64`;
  return { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name, labels }, spec: { bgp } };
}
const peer = (name: string, spec: BGPPeer['spec']): BGPPeer => ({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name }, spec });
const base = (over: Partial<BgpInputs>): BgpInputs => ({ nodeName: 'a', nodes: [], peers: [], affinities: [], blocks: [], pools: [], ...over });
const nodes = [node('a', '10.0.0.2', 'fd00::2'), node('b', '10.0.0.3', 'fd00::a'), node('c', '10.0.0.1', undefined), node('d', undefined, 'fd00::1')];

test('BGP plan: separate IPv6 mesh sessions between IPv6 addresses, sourced from ours, one passive side per pair', () => {
  const plan = computeBgpPlan(base({ nodes }));
  assert.equal(plan.nodeIP6, 'fd00::2');
  assert.deepEqual(
    plan.peers.map((p) => [p.name, p.address, p.sourceAddress, p.passive ?? false, p.node]),
    [
      ['Mesh_10_0_0_1', '10.0.0.1', '10.0.0.2', false, 'c'],
      ['Mesh_10_0_0_3', '10.0.0.3', '10.0.0.2', true, 'b'],
      ['Mesh_fd00__1', 'fd00::1', 'fd00::2', false, 'd'],
      ['Mesh_fd00__a', 'fd00::a', 'fd00::2', true, 'b'],
    ],
  );
  // An IPv6-only node runs BGP with its IPv6 sessions (router id from the node name).
  const d = computeBgpPlan(base({ nodeName: 'd', nodes }));
  assert.equal(d.enabled, true);
  assert.equal(d.nodeIP, undefined);
  assert.match(d.routerId, /^\d+\.\d+\.\d+\.\d+$/);
  assert.deepEqual(d.peers.map((p) => [p.address, p.passive ?? false]), [['fd00::2', true], ['fd00::a', true]]);
  // Every IPv6 pair agrees on exactly one passive side.
  for (const x of ['a', 'b', 'd']) {
    for (const y of ['a', 'b', 'd']) {
      if (x >= y) continue;
      const px = computeBgpPlan(base({ nodeName: x, nodes }));
      const py = computeBgpPlan(base({ nodeName: y, nodes }));
      const xy = px.peers.find((p) => p.address === py.nodeIP6)!;
      const yx = py.peers.find((p) => p.address === px.nodeIP6)!;
      assert.notEqual(xy.passive ?? false, yx.passive ?? false, `${x}/${y}`);
    }
  }
  assert.equal(computeBgpPlan(base({ nodes: [node('a', undefined, undefined)] })).enabled, false);
});

test('BGP plan: global and node BGPPeers with IPv6 peerIP; peerSelector gives one session per family', () => {
  const peers = [
    peer('tor6', { peerIP: 'fd00::ff', asNumber: 65000 }),
    peer('tor6port', { peerIP: '[fd00::fe]:1179', asNumber: 65000, node: 'a' }),
    peer('rr', { peerSelector: 'rr == "true"' }),
  ];
  const ns = [...nodes, node('r', '10.0.0.9', 'fd00::9', { rr: 'true' })];
  const plan = computeBgpPlan(base({ nodes: ns, peers }));
  const byName = new Map(plan.peers.map((p) => [p.name, p]));
  assert.deepEqual([byName.get('Global_fd00__ff')?.type, byName.get('Global_fd00__ff')?.sourceAddress], ['global', 'fd00::2']);
  assert.deepEqual([byName.get('Node_fd00__fe_port_1179')?.port, byName.get('Node_fd00__fe_port_1179')?.type], [1179, 'node specific']);
  // The rr node is also a mesh peer (same address): one session each for v4 and v6.
  assert.ok(byName.has('Mesh_10_0_0_9') && byName.has('Mesh_fd00__9'));
  // Without an IPv6 address of our own, IPv6 peers are skipped (no session can be sourced).
  const c = computeBgpPlan(base({ nodeName: 'c', nodes: ns, peers }));
  assert.ok(c.peers.every((p) => !p.address.includes(':')), c.peers.map((p) => p.address).join(' '));
  // With the mesh off, the peerSelector adds v4 and v6 sessions to the rr node.
  const off = computeBgpPlan(base({ nodes: ns, peers, config: { apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { nodeToNodeMeshEnabled: false } } }));
  assert.deepEqual(off.peers.filter((p) => p.source === 'rr').map((p) => [p.name, p.sourceAddress]), [['Global_10_0_0_9', '10.0.0.2'], ['Global_fd00__9', 'fd00::2']]);
});

test('node status shows the IPv6 address and the IPv6 BGP table', () => {
  const s: NodeStatusSnapshot = {
    nodeName: 'a',
    pid: 1,
    startedAt: '2026-01-01T00:00:00.000Z',
    ip: { cidr: '10.0.0.2/24', source: 'from the IP environment variable (10.0.0.2/24)', explanation: [] },
    ip6: { cidr: 'fd00::2/64', source: 'autodetected: fd00::2/64 on eth0 (method first-found)', explanation: ['eth0: chosen fd00::2/64'] },
    bgp: { enabled: true, peers: [{ address: 'fd00::a', type: 'node-to-node mesh', state: 'Established', since: '2026-01-01T00:00:05.000Z', info: 'Established' }], exports: [] },
    health: { live: true, ready: true, components: {} },
  };
  const out = formatNodeStatus(s, new Date('2026-01-01T00:01:00.000Z'));
  assert.match(out, /IPv6 address: fd00::2\/64\n {2}chosen autodetected: fd00::2\/64 on eth0/);
  assert.match(out, /IPv6 BGP status\n.*\n.*PEER ADDRESS.*\n.*\n.*fd00::a\s*\|\s*node-to-node mesh\s*\|\s*up\s*\|\s*00:00:05\s*\|\s*Established/);
  assert.doesNotMatch(out, /No IPv6 peers found/);
});

test('agent: IPv6 mesh peers reach the speaker live; the dataplane view carries the IPv6 parent interface', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 't6-agent-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: 'autodetect', IP6: 'autodetect', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), DATASTORE_TYPE: 'memory', FELIX_HEALTHENABLED: 'false' });
  const configs: SpeakerConfigLike[] = [];
  const speaker: SpeakerLike = {
    start: async () => undefined,
    stop: async () => undefined,
    setConfig: async (c) => void configs.push(c),
    status: () => ({ peers: [] }),
    routes: () => [],
    on: () => undefined,
  };
  const views: DataplaneView[] = [];
  const detection = (cidr: string, iface: string) => ({ cidr, address: cidr.split('/')[0]!, interface: iface, method: 'first-found', explanation: [`${iface}: chosen ${cidr}`] });
  const agent = new NodeAgent(cfg, {
    ds,
    log: silentLogger(),
    detect: async () => detection('10.0.0.2/24', 'eth0'),
    detect6: async () => detection('fd00::2/64', 'eth1'),
    speaker: (c) => {
      configs.push(c);
      return speaker;
    },
    dataplane: () => ({ start: async () => undefined, stop: async () => undefined, update: async () => ({ applied: true }) }),
    dataplaneInputs: (v) => void views.push(v),
  });
  t.after(() => agent.stop());
  await agent.start();
  await ds.create<Node>({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'node-b' }, spec: { bgp: { ipv4Address: '10.0.0.3/24', ipv6Address: 'fd00::3/64' } } });
  for (let i = 0; i < 100 && (configs.at(-1)?.peers.length ?? 0) < 2; i++) {
    await new Promise((r) => setTimeout(r, 20));
    await agent.settle();
  }
  assert.deepEqual(configs.at(-1)?.peers.map((p) => [p.address, p.sourceAddress, p.passive ?? false]), [['10.0.0.3', '10.0.0.2', true], ['fd00::3', 'fd00::2', true]]);
  assert.deepEqual([views.at(-1)?.parentIface, views.at(-1)?.parentIface6], ['eth0', 'eth1']);
  const snap = agent.snapshot();
  assert.equal(snap.ip6?.cidr, 'fd00::2/64');
  assert.deepEqual(snap.ip6?.explanation, ['eth1: chosen fd00::2/64']);
});

test('IPv6 VXLAN pool → ipv6VXLANTunnelAddr under vxlan-v6-tunnel-addr-<node>, only for nodes with an IPv6 address; pod MTU host − 70', async () => {
  const ds = new MemoryDatastore();
  const ipam = new Ipam({ datastore: ds });
  const pool6: IPPool = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'v6' }, spec: { cidr: 'fd00:10:244::/48', blockSize: 122, vxlanMode: 'Always', nodeSelector: 'all()' } };
  await ds.create<IPPool>(pool6);
  await ds.create<Node>({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'n1' }, spec: { bgp: { ipv4Address: '10.0.0.5/24', ipv6Address: 'fd00::5/64' } } });
  await ds.create<Node>({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'n2' }, spec: { bgp: { ipv4Address: '10.0.0.6/24' } } });
  const a = await ensureTunnelAddresses(ds, ipam, 'n1', silentLogger());
  assert.match(a.spec?.ipv6VXLANTunnelAddr ?? '', /^fd00:10:244:/);
  assert.equal(a.spec?.ipv4VXLANTunnelAddr, undefined, 'no IPv4 VXLAN pool');
  assert.deepEqual((await ds.list<IPAMHandle>('IPAMHandle')).items.map((h) => h.spec.handleID), ['vxlan-v6-tunnel-addr-n1']);
  const b = await ensureTunnelAddresses(ds, ipam, 'n2', silentLogger());
  assert.equal(b.spec?.ipv6VXLANTunnelAddr, undefined, 'n2 has no IPv6 underlay');
  const felix = parseNodeConfig(ENV).felix;
  assert.equal(podMtu(1500, [pool6], felix), 1430);
  assert.equal(podMtu(1500, [{ ...pool6, spec: { ...pool6.spec, vxlanMode: 'Never' } }], felix), 1500);
  const p = await ds.get<IPPool>('IPPool', 'v6');
  await ds.update<IPPool>({ ...p, spec: { ...p.spec, vxlanMode: 'Never' } });
  assert.equal((await ensureTunnelAddresses(ds, ipam, 'n1', silentLogger())).spec?.ipv6VXLANTunnelAddr, undefined, 'released when no pool needs it');
});

test('static IP6 with IPv4 autodetected: IPv6 no-encap routes leave by the interface that holds IP6, not the IPv4 one', async (t) => {
  const ifaces = [
    { name: 'eth0', up: true, addresses: ['10.0.0.2/24', 'fe80::1/64'] },
    { name: 'eth1', up: true, addresses: ['fd00:0:0:0::2/64'] },
  ];
  assert.equal(interfaceHolding(ifaces, 'fd00::2'), 'eth1', 'compared as addresses, not strings');
  assert.equal(interfaceHolding(ifaces, '10.0.0.2'), 'eth0');
  assert.equal(interfaceHolding(ifaces, 'fd00::9'), undefined);

  const dir = await mkdtemp(join(tmpdir(), 'tk5-v6if-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: 'autodetect', IP6: 'fd00::2/64', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), DATASTORE_TYPE: 'memory', FELIX_HEALTHENABLED: 'false', NO_DEFAULT_POOLS: 'true' });
  const views: DataplaneView[] = [];
  const located: string[] = [];
  const agent = new NodeAgent(cfg, {
    ds,
    log: silentLogger(),
    detect: async () => ({ cidr: '10.0.0.2/24', address: '10.0.0.2', interface: 'eth0', method: 'first-found', explanation: ['eth0: chosen 10.0.0.2/24'] }),
    detect6: async () => assert.fail('IP6 is static: no IPv6 autodetection'),
    locate: async (address, family) => {
      located.push(`${address}/${family}`);
      return interfaceHolding(ifaces, address);
    },
    dataplane: () => ({ start: async () => undefined, stop: async () => undefined, update: async () => ({ applied: true }) }),
    dataplaneInputs: (v) => void views.push(v),
  });
  t.after(() => agent.stop());
  await agent.start();
  await ds.create<IPPool>({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'v6' }, spec: { cidr: 'fd00:10:244::/48', blockSize: 122, nodeSelector: 'all()' } });
  await ds.create<Node>({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'node-b' }, spec: { bgp: { ipv4Address: '10.0.0.3/24', ipv6Address: 'fd00::3/64' } } });
  await ds.create({ apiVersion: 'crd.projectcalico.org/v1', kind: 'IPAMBlock', metadata: { name: 'fd00-10-244---40-122' }, spec: { cidr: 'fd00:10:244::40/122', affinity: 'host:node-b', allocations: [], unallocated: [], attributes: [], deleted: false } });
  for (let i = 0; i < 100 && !views.at(-1)?.blocks.length; i++) {
    await new Promise((r) => setTimeout(r, 20));
    await agent.settle();
  }
  assert.deepEqual(located, ['fd00::2/6']);
  const view = views.at(-1)!;
  assert.deepEqual([view.parentIface, view.parentIface6], ['eth0', 'eth1']);
  const routes = calculate(inputsFromResources(view)).routes.filter((r) => r.reason === 'noencap');
  assert.deepEqual(routes.map((r) => [r.dst, r.gw, r.dev]), [['fd00:10:244::40/122', 'fd00::3', 'eth1']]);
  assert.match(agent.snapshot().ip6?.source ?? '', /from the IP6 environment variable \(fd00::2\/64 on eth1\)/);
});
