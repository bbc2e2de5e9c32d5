/**
 * IPAM GC on a real etcd: two agents' collectors elect one leader through the lease, leaked
 * allocations go only after the grace and a second observation, live ones never, the other agent
 * takes over when the leader dies, a deleted Node's addresses/affinities/tunnel address are freed,
 * and an unreachable owner source releases nothing. Short graces/intervals; every wait polls with a
 * generous deadline (no timing assertions).
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { EtcdDatastore } from '../../datastore/etcd.js';
import type { Datastore } from '../../datastore/types.js';
import { createLogger } from '../../lib/log.js';
import { Ipam } from '../../ipam/ipam.js';
import { ensureTunnelAddress } from '../../ipam/tunnel.js';
import { IpamGc, workloadEndpointGcOwners } from '../../node/ipam-gc.js';
import type { IpamGcConfig } from '../../node/config.js';
import { NodeMetrics } from '../../node/metrics.js';
import { ensureClusterInformation } from '../../node/startup.js';
import { etcdMissing, startEtcd, startTcpProxy, type EtcdHarness } from '../datastore/etcd-harness.js';
import { addNode, addPool } from '../ipam/fixtures.js';

const CFG: IpamGcConfig = { enabled: true, graceMs: 1500, intervalMs: 150, leaseDurationMs: 1200 };
const DEADLINE_MS = 40_000;

let etcd: EtcdHarness | undefined;
const skipReason = etcdMissing();
let prefixN = 0;
const closers: Array<() => Promise<unknown>> = [];

before(async () => {
  if (!skipReason) etcd = await startEtcd({ clientPorts: [23910, 23914], peerPorts: [24010, 24019] });
});
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await etcd?.stop();
});

function need(t: TestContext): EtcdHarness | undefined {
  if (!etcd) t.skip(skipReason ?? 'etcd not started');
  return etcd;
}

function client(endpoint: string, prefix: string, timeoutMs = 3000): EtcdDatastore {
  const ds = new EtcdDatastore({ endpoints: [endpoint], keyPrefix: prefix, requestTimeoutMs: timeoutMs });
  closers.push(() => ds.close());
  return ds;
}

async function waitFor(what: string, fn: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

/** A logger whose JSON lines the test can read. */
function capturingLogger(lines: Array<Record<string, unknown>>) {
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return createLogger({ name: 'tabby-node', level: 'debug', destination });
}

async function pod(ds: Datastore, ipam: Ipam, node: string, cid: string, withWep: boolean): Promise<string> {
  const r = await ipam.autoAssign({ num4: 1, handleId: `k8s-pod-network.${cid}`, hostname: node, attrs: { node, namespace: 'ns', pod: cid, containerID: cid } });
  const ip = r.ipv4[0]!.ip;
  if (withWep) {
    await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name: `${node}-k8s-${cid}-eth0`, namespace: 'ns' }, spec: { node, containerID: cid, ipNetworks: [`${ip}/32`] } });
  }
  return ip;
}

/**
 * One test's cluster under a fresh key prefix: ClusterInformation, the pool and these Nodes, an
 * admin connection; `collector(identity, deps)` is an IpamGc on its own connection, stopped at test
 * end; `pod(node, cid, withWep)` allocates (and optionally records the owner); `holds(cid)`.
 * Undefined (the test skipped) without etcd.
 */
async function fixture(t: TestContext, nodes: string[]) {
  const e = need(t);
  if (!e) return undefined;
  const prefix = `/tgc-${process.pid}-${prefixN++}/`;
  const admin = client(e.endpoint, prefix);
  await ensureClusterInformation(admin, 'test');
  await addPool(admin, 'p4', { cidr: '10.90.0.0/16', blockSize: 26 });
  for (const n of nodes) await addNode(admin, n);
  const ipam = new Ipam({ datastore: admin });
  return {
    e,
    prefix,
    admin,
    ipam,
    collector(identity: string, deps: Partial<ConstructorParameters<typeof IpamGc>[1]> = {}): IpamGc {
      const ds = client(e.endpoint, prefix);
      const gc = new IpamGc(CFG, { ds, ipam: new Ipam({ datastore: ds }), identity, ...deps });
      t.after(() => gc.stop());
      return gc;
    },
    pod: (node: string, cid: string, withWep: boolean) => pod(admin, ipam, node, cid, withWep),
    holds: async (cid: string) => (await ipam.ipsByHandle(`k8s-pod-network.${cid}`)).length > 0,
  };
}

test('two agents: one leader; a leak goes after the grace and a second look; a live pod stays; the survivor takes over', async (t) => {
  const f = await fixture(t, ['n1', 'n2']);
  if (!f) return;
  await f.pod('n1', 'live', true);
  await f.pod('n2', 'leak1', false);

  const logs: Array<Record<string, unknown>> = [];
  const mk = (id: string) => f.collector(id, { log: capturingLogger(logs).child({ agent: id }), metrics: new NodeMetrics(false) });
  const a = mk('n1');
  const b = mk('n2');
  let bothLeading = 0;
  const sampler = setInterval(() => {
    if (a.isLeader() && b.isLeader()) bothLeading++;
  }, 20);
  t.after(() => clearInterval(sampler));
  a.start();
  b.start();

  await waitFor('a leader', () => a.isLeader() || b.isLeader());
  await waitFor('the leak released', async () => !(await f.holds('leak1')));
  // The log line follows the release's commit: wait for it too.
  const released = () => logs.find((l) => l.msg === 'released a leaked allocation' && l.handle === 'k8s-pod-network.leak1');
  await waitFor('the release logged', () => released() !== undefined);
  const rel = released()!;
  assert.ok((rel.time as number) - Date.parse(rel.ownerlessSince as string) >= CFG.graceMs, 'released no earlier than the grace after the first observation');
  assert.ok(await f.holds('live'), 'the live pod keeps its address');
  assert.equal(bothLeading, 0, 'never two leaders at once');

  // The leader dies without giving the lease up; the other one takes over after the lease expires.
  const [leader, follower] = a.isLeader() ? [a, b] : [b, a];
  await leader.stop({ releaseLease: false });
  await f.pod('n1', 'leak2', false);
  await waitFor('the follower leads', () => follower.isLeader());
  await waitFor('the second leak released by the new leader', async () => !(await f.holds('leak2')));
  assert.ok(await f.holds('live'));
});

test('a deleted Node: its pods, tunnel address, affinities and blocks are freed', async (t) => {
  const f = await fixture(t, ['n1', 'n3']);
  if (!f) return;
  const { ipam } = f;
  await ensureTunnelAddress(ipam, 'n3', 'ipip');
  await f.pod('n3', 'on-n3', true);
  await f.pod('n1', 'on-n1', true);
  const n3Blocks = (await ipam.store.listAffinities('n3')).map((a) => a.spec.cidr);
  assert.equal(n3Blocks.length, 1);

  const gc = f.collector('n1');
  gc.start();
  await waitFor('leader', () => gc.isLeader());
  await f.admin.delete('Node', 'n3');
  await waitFor('n3 affinities released', async () => (await ipam.store.listAffinities('n3')).length === 0);
  await waitFor('n3 tunnel handle gone', async () => (await ipam.store.getHandle('ipip-tunnel-addr-n3')) === undefined);
  await waitFor('n3 pod released', async () => !(await f.holds('on-n3')));
  await waitFor('n3 block deleted', async () => (await ipam.store.getBlock(n3Blocks[0]!)) === undefined);
  assert.ok(await f.holds('on-n1'), 'the live node keeps everything');
  assert.equal((await ipam.store.listAffinities('n1')).length, 1);
});

test('an unreachable owner source releases nothing; once it answers again the leak goes', async (t) => {
  const f = await fixture(t, ['n1']);
  if (!f) return;
  const proxy = await startTcpProxy(f.e.clientPort, [23915, 23919]);
  t.after(() => proxy.close());
  const viaProxy = client(proxy.endpoint, f.prefix, 800);
  proxy.cut();
  await f.pod('n1', 'leak', false);

  const metrics = new NodeMetrics(false);
  const gc = f.collector('n1', { metrics, owners: workloadEndpointGcOwners(viaProxy) });
  const errors = async () => Number(/stage="owners"} (\d+)/.exec(await metrics.registry!.getSingleMetricAsString('tabby_ipam_gc_errors_total'))?.[1] ?? 0);
  gc.start();
  // Let failing passes span well over the grace.
  const cutAt = Date.now();
  await waitFor('several failed passes over more than the grace', async () => (await errors()) >= 3 && Date.now() - cutAt > 2 * CFG.graceMs);
  assert.ok(await f.holds('leak'), 'nothing released while owners cannot be read');
  proxy.restore();
  await waitFor('released once owners are readable', async () => !(await f.holds('leak')));
});
