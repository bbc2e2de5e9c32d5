import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDatastore } from '../../datastore/memory.js';
import { UnavailableError } from '../../datastore/types.js';
import { Ipam } from '../../ipam/ipam.js';
import { ensureTunnelAddress } from '../../ipam/tunnel.js';
import { clusterInformationLeaseStore, LEASE_ANNOTATION_PREFIX, LeaderElector } from '../../node/lease.js';
import { IpamGc, IpamGcError, IPAM_GC_DEFAULTS, workloadEndpointGcOwners } from '../../node/ipam-gc.js';
import { parseIpamGc, parseNodeConfig } from '../../node/config.js';
import { NodeAgent } from '../../node/agent.js';
import { silentLogger } from '../../lib/log.js';
import { NodeMetrics } from '../../node/metrics.js';
import { ensureClusterInformation } from '../../node/startup.js';
import type { ClusterInformation } from '../../api/types.js';
import { addNode, addPool } from '../ipam/fixtures.js';

async function setup() {
  const ds = new MemoryDatastore();
  await ensureClusterInformation(ds, 'test');
  await addPool(ds, 'p4', { cidr: '10.80.0.0/16', blockSize: 26 });
  return { ds, ipam: new Ipam({ datastore: ds }) };
}

async function addWep(ds: MemoryDatastore, cid: string, ip: string, node = 'n1') {
  await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name: `${node}-k8s-${cid}-eth0`, namespace: 'ns' }, spec: { node, containerID: cid, ipNetworks: [`${ip}/32`] } });
}

async function addPod(ds: MemoryDatastore, ipam: Ipam, cid: string, node = 'n1', wep = true) {
  const r = await ipam.autoAssign({ num4: 1, handleId: `k8s-pod-network.${cid}`, hostname: node, attrs: { node, namespace: 'ns', pod: cid, containerID: cid } });
  const ip = r.ipv4[0]!.ip;
  if (wep) await addWep(ds, cid, ip, node);
  return ip;
}

async function metric(m: NodeMetrics, name: string): Promise<string> {
  return (await m.registry!.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#')).join('\n');
}

test('lease: one leader; a follower takes over only after the lease went unrenewed for its duration; release hands over at once', async () => {
  const ds = new MemoryDatastore();
  await ensureClusterInformation(ds, 'test');
  let clock = 0;
  const mk = (id: string) => new LeaderElector({ store: clusterInformationLeaseStore(ds, 'x'), identity: id, leaseDurationMs: 15_000, now: () => clock });
  const a = mk('a');
  const b = mk('b');
  assert.equal(await a.tick(), true);
  assert.equal(await b.tick(), false);
  clock = 10_000;
  assert.equal(await a.tick(), true, 'renewed');
  assert.equal(await b.tick(), false);
  // a stops renewing (process died): b judges by its own clock from when it saw the last change.
  clock = 24_000;
  assert.equal(await b.tick(), false, 'only 14 s since b saw the renewal');
  clock = 25_000;
  assert.equal(await b.tick(), true, 'stale after 15 s: taken over');
  const ci = await ds.get<ClusterInformation>('ClusterInformation', 'default');
  const rec = JSON.parse(ci.metadata.annotations![`${LEASE_ANNOTATION_PREFIX}x`]!) as { holderIdentity: string; leaseTransitions: number };
  assert.equal(rec.holderIdentity, 'b');
  assert.equal(rec.leaseTransitions, 1);
  assert.equal(await a.tick(), false, 'the old holder sees the new one and follows');
  assert.equal(a.isLeader(), false);
  await b.release();
  assert.equal(await a.tick(), true, 'a released lease is free at once');
  assert.equal(ci.spec?.clusterGUID !== undefined, true, 'ClusterInformation spec untouched');
  assert.equal((await ds.get<ClusterInformation>('ClusterInformation', 'default')).spec?.clusterGUID, ci.spec?.clusterGUID);
});

test('lease: two electors racing for a free lease: exactly one wins (CAS)', async () => {
  const ds = new MemoryDatastore();
  await ensureClusterInformation(ds, 'test');
  const els = ['a', 'b', 'c'].map((id) => new LeaderElector({ store: clusterInformationLeaseStore(ds, 'race'), identity: id, leaseDurationMs: 15_000, now: () => 0 }));
  const won = await Promise.all(els.map((e) => e.tick()));
  assert.equal(won.filter(Boolean).length, 1);
});

test('lease: datastore trouble or no ClusterInformation → not leader, no throw; the leader steps down when it cannot renew', async () => {
  const ds = new MemoryDatastore();
  const e = new LeaderElector({ store: clusterInformationLeaseStore(ds, 'x'), identity: 'a', leaseDurationMs: 15_000, now: () => 0 });
  assert.equal(await e.tick(), false, 'no ClusterInformation yet');
  await ensureClusterInformation(ds, 'test');
  assert.equal(await e.tick(), true);
  ds.injectFault({ op: 'get', kind: 'ClusterInformation', error: () => new UnavailableError('memory') });
  assert.equal(await e.tick(), false);
  assert.equal(await e.tick(), true, 'back once the datastore answers (still its own lease)');
});

test('GC runner: a leaked allocation goes after the grace; a live one stays; metrics count it', async () => {
  const { ds, ipam } = await setup();
  await addNode(ds, 'n1');
  const live = await addPod(ds, ipam, 'live');
  const leaked = await addPod(ds, ipam, 'leaked', 'n1', false);
  let clock = 1_000;
  const metrics = new NodeMetrics(false);
  const gc = new IpamGc({ ...IPAM_GC_DEFAULTS, graceMs: 60_000, intervalMs: 30_000 }, { ds, ipam, identity: 'n1', metrics, now: () => clock });
  await gc.tick();
  assert.equal(gc.isLeader(), true);
  assert.match(await metric(metrics, 'tabby_ipam_gc_leader'), / 1$/);
  assert.match(await metric(metrics, 'tabby_ipam_gc_candidates'), / 1$/);
  clock += 30_000;
  await gc.tick();
  assert.equal((await ipam.ipsByHandle('k8s-pod-network.leaked')).length, 1, 'inside the grace');
  clock += 30_000;
  await gc.tick();
  assert.deepEqual(await ipam.ipsByHandle('k8s-pod-network.leaked'), [], 'released after the grace');
  assert.equal(await ipam.store.getHandle('k8s-pod-network.leaked'), undefined, 'handle removed with its last address');
  assert.deepEqual((await ipam.ipsByHandle('k8s-pod-network.live')).map((a) => a.ip), [live]);
  assert.match(await metric(metrics, 'tabby_ipam_gc_reclaimed_total'), /reason="owner-gone"} 1/);
  assert.match(await metric(metrics, 'tabby_ipam_gc_passes_total'), / 3$/);
  assert.ok(leaked);
  await gc.stop();
  assert.match(await metric(metrics, 'tabby_ipam_gc_leader'), / 0$/);
});

test('GC runner: an owner source error aborts the pass, releases nothing and is counted', async () => {
  const { ds, ipam } = await setup();
  await addNode(ds, 'n1');
  await addPod(ds, ipam, 'leaked', 'n1', false);
  let clock = 0;
  let broken = false;
  const real = workloadEndpointGcOwners(ds);
  const metrics = new NodeMetrics(false);
  const gc = new IpamGc({ ...IPAM_GC_DEFAULTS }, { ds, ipam, identity: 'n1', metrics, now: () => clock, owners: () => (broken ? Promise.reject(new UnavailableError('etcd')) : real()) });
  const first = await gc.runPass();
  assert.equal(first.candidates, 1);
  broken = true;
  clock = 10 * IPAM_GC_DEFAULTS.graceMs;
  await assert.rejects(gc.runPass(), UnavailableError);
  assert.equal((await ipam.ipsByHandle('k8s-pod-network.leaked')).length, 1);
  assert.match(await metric(metrics, 'tabby_ipam_gc_errors_total'), /stage="owners"} 1/);
  // The same with the WorkloadEndpoint list itself failing inside the default source.
  broken = false;
  ds.injectFault({ op: 'list', kind: 'WorkloadEndpoint', error: () => new UnavailableError('etcd') });
  await assert.rejects(gc.runPass(), UnavailableError);
  assert.equal((await ipam.ipsByHandle('k8s-pod-network.leaked')).length, 1);
  // Back: the earlier observation still stands, so this pass releases.
  const ok = await gc.runPass();
  assert.deepEqual(ok.released.map((r) => r.reason), ['owner-gone']);
});

test('GC runner: an address re-allocated after the snapshot is never freed (sequence-number guard)', async () => {
  const { ds, ipam } = await setup();
  await addNode(ds, 'n1');
  const ip = await addPod(ds, ipam, 'old', 'n1', false);
  let clock = 0;
  const gc = new IpamGc({ ...IPAM_GC_DEFAULTS }, { ds, ipam, identity: 'n1', now: () => clock });
  await gc.runPass();
  clock = IPAM_GC_DEFAULTS.graceMs;
  // Between the GC's read and its release: CNI DEL of the old container, ADD of a new one on the same address.
  const other = new Ipam({ datastore: ds });
  ds.injectFault({
    op: 'get',
    kind: 'IPAMBlock',
    before: async () => {
      ds.clearFaults();
      await other.releaseByHandle('k8s-pod-network.old');
      await other.assignIp({ ip, handleId: 'k8s-pod-network.new', hostname: 'n1', attrs: { node: 'n1', namespace: 'ns', pod: 'new', containerID: 'new' } });
      await addWep(ds, 'new', ip);
    },
  });
  const r = await gc.runPass();
  assert.equal(r.released.length, 0);
  assert.equal(r.skipped, 1);
  assert.deepEqual((await ipam.ipsByHandle('k8s-pod-network.new')).map((a) => a.ip), [ip]);
});

test('GC runner: a deleted Node loses its addresses, tunnel address, affinities and empty blocks', async () => {
  const { ds, ipam } = await setup();
  await addNode(ds, 'n1');
  await addNode(ds, 'n2');
  const tunnel = await ensureTunnelAddress(ipam, 'n2', 'ipip');
  await addPod(ds, ipam, 'p2', 'n2');
  const keep = await addPod(ds, ipam, 'p1', 'n1');
  let clock = 0;
  const gc = new IpamGc({ ...IPAM_GC_DEFAULTS }, { ds, ipam, identity: 'n1', now: () => clock });
  assert.equal((await gc.runPass()).candidates, 0);
  await ds.delete('Node', 'n2');
  assert.equal((await gc.runPass()).released.length, 0);
  clock = IPAM_GC_DEFAULTS.graceMs;
  const r = await gc.runPass();
  assert.deepEqual(r.deletedNodes, ['n2']);
  assert.equal(r.released.length, 2);
  assert.ok(r.released.every((x) => x.reason === 'node-deleted'));
  assert.equal(r.affinitiesReleased, 1);
  assert.deepEqual(await ipam.ipsByHandle('ipip-tunnel-addr-n2'), []);
  assert.equal(await ipam.store.getHandle('ipip-tunnel-addr-n2'), undefined);
  assert.deepEqual(await ipam.store.listAffinities('n2'), []);
  const blocks = await ipam.store.listBlocks();
  assert.ok(blocks.every((b) => b.spec.affinity !== 'host:n2'), 'n2 block deleted');
  assert.equal(blocks.length, 1);
  assert.deepEqual((await ipam.ipsByHandle('k8s-pod-network.p1')).map((a) => a.ip), [keep]);
  assert.ok(tunnel);
  const again = await gc.runPass();
  assert.equal(again.candidates + again.released.length + again.affinitiesReleased, 0, 'converged');
});

test('config: TABBY_IPAM_GC* parsing', () => {
  assert.deepEqual(parseIpamGc({}), IPAM_GC_DEFAULTS);
  assert.deepEqual(parseIpamGc({ TABBY_IPAM_GC: 'off', TABBY_IPAM_GC_GRACE: '2m', TABBY_IPAM_GC_INTERVAL: '500ms', TABBY_IPAM_GC_LEASE: '10' }), {
    enabled: false,
    graceMs: 120_000,
    intervalMs: 500,
    leaseDurationMs: 10_000,
  });
  assert.throws(() => parseIpamGc({ TABBY_IPAM_GC_GRACE: 'soon' }), /TABBY_IPAM_GC_GRACE|duration/);
  assert.throws(() => parseIpamGc({ TABBY_IPAM_GC: 'maybe' }), /boolean/);
});

test('agent: starts the collector (on by default, TABBY_IPAM_GC=off disables it); a leak goes, the node keeps its tunnel address', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tgc-agent-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  const ipam = new Ipam({ datastore: ds });
  const env = {
    NODENAME: 'node-a',
    IP: '10.0.0.2/24',
    TABBY_RUN_DIR: join(dir, 'run'),
    TABBY_LIB_DIR: join(dir, 'lib'),
    CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
    CALICO_IPV4POOL_VXLAN: 'Always',
    DATASTORE_TYPE: 'memory',
    FELIX_HEALTHENABLED: 'false',
    TABBY_IPAM_GC_GRACE: '300ms',
    TABBY_IPAM_GC_INTERVAL: '50ms',
    TABBY_IPAM_GC_LEASE: '300ms',
  };
  const deps = { ds, ipam, log: silentLogger(), detect: async () => assert.fail('static IP'), hostMtu: async () => 1500 };
  const off = new NodeAgent(parseNodeConfig({ ...env, TABBY_IPAM_GC: 'off', TABBY_RUN_DIR: join(dir, 'run-off') }), deps);
  await off.start();
  assert.equal(off.ipamGc, undefined);
  await off.stop();

  const agent = new NodeAgent(parseNodeConfig(env), deps);
  t.after(() => agent.stop());
  await agent.start();
  assert.ok(agent.ipamGc);
  const tunnel = await ipam.ipsByHandle('vxlan-tunnel-addr-node-a');
  assert.equal(tunnel.length, 1);
  await ipam.autoAssign({ num4: 1, handleId: 'k8s-pod-network.gone', hostname: 'node-a', attrs: { node: 'node-a', namespace: 'ns', pod: 'gone', containerID: 'gone' } });
  const deadline = Date.now() + 30_000;
  while ((await ipam.ipsByHandle('k8s-pod-network.gone')).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await ipam.ipsByHandle('k8s-pod-network.gone'), [], 'released by the agent');
  assert.equal(agent.ipamGc.isLeader(), true);
  assert.deepEqual(await ipam.ipsByHandle('vxlan-tunnel-addr-node-a'), tunnel, 'tunnel address of a live node kept');
  // Metrics are off by default (as Felix): no registry, the GC's counters are no-ops (the runner tests above check them).
  assert.equal(agent.metrics.registry, undefined);
});

test('GC runner: an owner snapshot without the agent’s own Node is refused (wrong data → nothing released)', async () => {
  const { ds, ipam } = await setup();
  await addPod(ds, ipam, 'leaked', 'n1', false);
  let clock = 0;
  const metrics = new NodeMetrics(false);
  const gc = new IpamGc({ ...IPAM_GC_DEFAULTS }, { ds, ipam, identity: 'n1', metrics, now: () => clock });
  await assert.rejects(gc.runPass(), (err: unknown) => err instanceof IpamGcError && err.code === 'OwnersIncomplete');
  clock = 10 * IPAM_GC_DEFAULTS.graceMs;
  await assert.rejects(gc.runPass(), IpamGcError);
  assert.equal((await ipam.ipsByHandle('k8s-pod-network.leaked')).length, 1);
  assert.match(await metric(metrics, 'tabby_ipam_gc_errors_total'), /stage="owners"} 2/);
});
