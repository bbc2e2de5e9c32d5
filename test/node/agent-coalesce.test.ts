/**
 * The agent's partial recomputes (node/agent.ts `schedule`): session state changes only refresh
 * readiness, best-path changes only the dataplane, an unchanged speaker configuration or dataplane
 * view is not re-applied — and after any sequence of events the applied state equals what a fresh
 * agent computes from the same datastore in one full pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { MemoryDatastore } from '../../datastore/memory.js';
import { silentLogger } from '../../lib/log.js';
import { parseNodeConfig } from '../../node/config.js';
import { BGP_REPORT_DELAY_MS, NodeAgent, type DataplaneLike, type SpeakerConfigLike, type SpeakerLike } from '../../node/agent.js';
import { impliedNextHops, inputsFromResources } from '../../felix/resources.js';
import type { BGPPeer, BlockAffinity, IPAMBlock, Node, WorkloadEndpoint } from '../../api/types.js';
import type { Resource } from '../../api/meta.js';

type Route = { prefix: string; nextHop: string };

/** The speaker's 'best-path' event for a learned route (nextHop undefined: the prefix went away). */
const bestPath = (prefix: string, nextHop: string | undefined) => ({ prefix, best: nextHop === undefined ? undefined : { source: { id: nextHop }, attrs: { nextHop } } });

class FakeSpeaker extends EventEmitter implements SpeakerLike {
  readonly configs: SpeakerConfigLike[] = [];
  statusCalls = 0;
  established = false;
  constructor(
    cfg: SpeakerConfigLike,
    private readonly learned: () => Route[],
  ) {
    super();
    this.configs.push(cfg);
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async setConfig(cfg: SpeakerConfigLike): Promise<void> {
    this.configs.push(cfg);
  }
  status() {
    this.statusCalls++;
    const state = this.established ? 'Established' : 'Active';
    return { peers: this.configs.at(-1)!.peers.map((p) => ({ address: p.address, port: 179, peerType: p.description ?? '', state, since: '2026-11-23T08:00:00Z', info: state, prefixes: { received: 0 } })) };
  }
  routes() {
    return this.learned().map((r) => ({ family: 'ipv4-unicast', prefix: r.prefix, paths: [{ from: r.nextHop, nextHop: r.nextHop, best: true }] }));
  }
}

class FakeDataplane implements DataplaneLike {
  readonly updates: unknown[] = [];
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async update(inputs: unknown): Promise<{ applied: boolean }> {
    this.updates.push(JSON.parse(JSON.stringify(inputs)));
    return { applied: true };
  }
}

interface Harness {
  agent: NodeAgent;
  speaker: () => FakeSpeaker;
  dataplane: FakeDataplane;
}

async function startAgent(ds: MemoryDatastore, dir: string, learned: () => Route[]): Promise<Harness> {
  const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: '10.0.0.2/24', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), DATASTORE_TYPE: 'memory', FELIX_HEALTHENABLED: 'false', CALICO_IPV4POOL_CIDR: '10.244.0.0/16' });
  let speaker: FakeSpeaker | undefined;
  const dataplane = new FakeDataplane();
  const agent = new NodeAgent(cfg, {
    ds,
    log: silentLogger(),
    detect: async () => assert.fail('static IP'),
    hostMtu: async () => 1500,
    speaker: (c) => (speaker = new FakeSpeaker(c, learned)),
    dataplane: () => dataplane,
    dataplaneInputs: (v) => inputsFromResources(v),
    impliedNextHops: (v) => impliedNextHops(v),
  });
  await agent.start();
  await settle(agent);
  return { agent, speaker: () => speaker ?? assert.fail('no speaker'), dataplane };
}

/** Let the memory datastore deliver its watch events, then wait for the recompute. */
async function settle(agent: NodeAgent): Promise<void> {
  await new Promise((r) => setTimeout(r, 30));
  await agent.settle();
}

const node = (i: number): Node => ({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: `node-${i}` }, spec: { bgp: { ipv4Address: `10.0.0.${10 + i}/24` } } });
/** Node 0 is this node (node-a). */
const nodeName = (n: number): string => (n === 0 ? 'node-a' : `node-${n}`);
/** `allocs`: [ordinal, node of the workload] — a node other than the block's owner borrowed it. */
const block = (i: number, owner: number, allocs: ReadonlyArray<readonly [number, number]> = []): IPAMBlock => {
  const allocations: Array<number | null> = Array.from({ length: 64 }, () => null);
  const attributes = allocs.map(([ord, n], k) => {
    allocations[ord] = k;
    return { handle_id: `h-${i}-${ord}`, secondary: { node: nodeName(n), namespace: 'default', pod: `p${ord}` } };
  });
  return {
    apiVersion: 'crd.projectcalico.org/v1',
    kind: 'IPAMBlock',
    metadata: { name: `10-244-${i}-0-26` },
    spec: { cidr: `10.244.${i}.0/26`, affinity: `host:${nodeName(owner)}`, strictAffinity: false, allocations, unallocated: [], attributes },
  };
};
const affinity = (i: number, owner: number): BlockAffinity => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'BlockAffinity',
  metadata: { name: `${nodeName(owner)}-10-244-${i}-0-26` },
  spec: { cidr: `10.244.${i}.0/26`, node: nodeName(owner), state: 'confirmed', deleted: 'false' },
});
const peer = (i: number, as: number): BGPPeer => ({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: `peer-${i}` }, spec: { peerIP: `10.0.1.${i}`, asNumber: as } });
const wep = (i: number, ip: number, on = 0): WorkloadEndpoint => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'WorkloadEndpoint',
  metadata: { name: `node--a-k8s-pod${i}-eth0`, namespace: 'default' },
  spec: { node: nodeName(on), interfaceName: `cali${i}`, ipNetworks: [`10.244.99.${ip}/32`] },
});

async function put(ds: MemoryDatastore, obj: Resource): Promise<void> {
  try {
    const cur = await ds.get(obj.kind, obj.metadata.name, obj.metadata.namespace);
    await ds.update({ ...obj, metadata: { ...obj.metadata, resourceVersion: cur.metadata.resourceVersion } });
  } catch {
    await ds.create(obj);
  }
}

async function del(ds: MemoryDatastore, obj: Resource): Promise<void> {
  await ds.delete(obj.kind, obj.metadata.name, obj.metadata.namespace === undefined ? {} : { namespace: obj.metadata.namespace }).catch(() => undefined);
}

test('session state changes refresh readiness only; best-path changes re-send the dataplane only; repeats apply nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-coalesce-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  let learned: Route[] = [];
  const h = await startAgent(ds, dir, () => learned);
  t.after(() => h.agent.stop());
  for (let i = 1; i <= 3; i++) await put(ds, node(i));
  await settle(h.agent);
  const sp = h.speaker();
  const configs = sp.configs.length;
  const updates = h.dataplane.updates.length;
  assert.deepEqual(sp.configs.at(-1)!.peers.map((p) => p.address), ['10.0.0.11', '10.0.0.12', '10.0.0.13']);

  // 99 × 5 transitions at mesh start arrive as a burst: no reconfiguration, no dataplane work, one report.
  sp.established = true;
  const statusBefore = sp.statusCalls;
  for (let i = 0; i < 50; i++) sp.emit('peer-state');
  await new Promise((r) => setTimeout(r, BGP_REPORT_DELAY_MS + 50));
  await h.agent.settle();
  assert.equal(sp.configs.length, configs);
  assert.equal(h.dataplane.updates.length, updates);
  assert.ok(sp.statusCalls - statusBefore <= 2, `status() read ${sp.statusCalls - statusBefore} times for one burst`);
  assert.equal(h.agent.health.summary().components.bgp?.ready, true);

  // A best path: the dataplane gets the next hop; the speaker is not reconfigured.
  learned = [{ prefix: '10.244.5.0/26', nextHop: '10.0.0.11' }];
  sp.emit('best-path', bestPath('10.244.5.0/26', '10.0.0.11'));
  await settle(h.agent);
  assert.equal(sp.configs.length, configs);
  assert.equal(h.dataplane.updates.length, updates + 1);
  const last = h.dataplane.updates.at(-1) as { remoteBlocks: Array<{ cidr: string; nextHop?: string }> };
  assert.deepEqual(last.remoteBlocks, [{ cidr: '10.244.5.0/26', nextHop: '10.0.0.11', node: 'node-1' }]);

  // The same best path again, and a datastore change that alters neither plan nor dataplane view.
  sp.emit('best-path', bestPath('10.244.5.0/26', '10.0.0.11'));
  await put(ds, { ...node(2), metadata: { name: 'node-2', labels: { rack: 'r1' } } });
  await settle(h.agent);
  assert.equal(sp.configs.length, configs);
  assert.equal(h.dataplane.updates.length, updates + 1);

  // A workload endpoint: dataplane only.
  await put(ds, wep(1, 7));
  await settle(h.agent);
  assert.equal(sp.configs.length, configs);
  assert.equal(h.dataplane.updates.length, updates + 2);

  // Node 3's block, then its best path with node 3's own address as next hop (every path at a mesh
  // start): the datastore already routes it there, so no dataplane work. Another next hop: applied.
  await put(ds, block(7, 3));
  await settle(h.agent);
  assert.equal(h.dataplane.updates.length, updates + 3);
  learned = [...learned, { prefix: '10.244.7.0/26', nextHop: '10.0.0.13' }];
  sp.emit('best-path', bestPath('10.244.7.0/26', '10.0.0.13'));
  await settle(h.agent);
  assert.equal(h.dataplane.updates.length, updates + 3);
  learned = [learned[0]!, { prefix: '10.244.7.0/26', nextHop: '10.0.0.12' }];
  sp.emit('best-path', bestPath('10.244.7.0/26', '10.0.0.12'));
  await settle(h.agent);
  assert.equal(h.dataplane.updates.length, updates + 4);
  const via = (h.dataplane.updates.at(-1) as { remoteBlocks: Array<{ cidr: string; nextHop?: string; node?: string }> }).remoteBlocks.find((b) => b.cidr === '10.244.7.0/26');
  assert.deepEqual(via, { cidr: '10.244.7.0/26', node: 'node-3', nextHop: '10.0.0.12' });
});

type Op =
  | { kind: 'node'; i: number; del: boolean }
  | { kind: 'block'; i: number; owner: number; allocs: Array<[number, number]>; del: boolean }
  | { kind: 'affinity'; i: number; owner: number; del: boolean }
  | { kind: 'peer'; i: number; as: number; del: boolean }
  | { kind: 'wep'; i: number; ip: number; on: number; del: boolean }
  | { kind: 'route'; i: number; nextHop: number; del: boolean }
  | { kind: 'peer-state' }
  | { kind: 'pause' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('node' as const), i: fc.integer({ min: 1, max: 4 }), del: fc.boolean() }),
  fc.record({
    kind: fc.constant('block' as const),
    i: fc.integer({ min: 1, max: 5 }),
    owner: fc.integer({ min: 0, max: 4 }),
    // Allocations by the owner and by other nodes (this one included: borrowed addresses it exports).
    allocs: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 2 })), { maxLength: 3, selector: ([ord]) => ord }),
    del: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('affinity' as const), i: fc.integer({ min: 1, max: 5 }), owner: fc.integer({ min: 0, max: 2 }), del: fc.boolean() }),
  fc.record({ kind: fc.constant('peer' as const), i: fc.integer({ min: 1, max: 3 }), as: fc.constantFrom(64512, 65001), del: fc.boolean() }),
  fc.record({ kind: fc.constant('wep' as const), i: fc.integer({ min: 1, max: 3 }), ip: fc.integer({ min: 1, max: 60 }), on: fc.integer({ min: 0, max: 2 }), del: fc.boolean() }),
  fc.record({ kind: fc.constant('route' as const), i: fc.integer({ min: 1, max: 5 }), nextHop: fc.integer({ min: 1, max: 4 }), del: fc.boolean() }),
  fc.constant({ kind: 'peer-state' as const }),
  fc.constant({ kind: 'pause' as const }),
);

test('after any event sequence the applied speaker config and dataplane view equal a fresh full recompute', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-coalesce-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
      const ds = new MemoryDatastore();
      const routes = new Map<string, Route>();
      const learned = (): Route[] => [...routes.values()];
      const a = await startAgent(ds, join(dir, `a${run}`), learned);
      try {
        for (const op of ops) {
          switch (op.kind) {
            case 'node':
              await (op.del ? del(ds, node(op.i)) : put(ds, node(op.i)));
              break;
            case 'block':
              // owner 0 = this node (node-a): a local block, exported over BGP.
              await (op.del ? del(ds, block(op.i, op.owner)) : put(ds, block(op.i, op.owner, op.allocs)));
              break;
            case 'affinity':
              await (op.del ? del(ds, affinity(op.i, op.owner)) : put(ds, affinity(op.i, op.owner)));
              break;
            case 'peer':
              await (op.del ? del(ds, peer(op.i, op.as)) : put(ds, peer(op.i, op.as)));
              break;
            case 'wep':
              await (op.del ? del(ds, wep(op.i, op.ip)) : put(ds, wep(op.i, op.ip, op.on)));
              break;
            case 'route':
              if (op.del) routes.delete(`10.244.${op.i}.0/26`);
              else routes.set(`10.244.${op.i}.0/26`, { prefix: `10.244.${op.i}.0/26`, nextHop: `10.0.0.${10 + op.nextHop}` });
              a.speaker().emit('best-path', bestPath(`10.244.${op.i}.0/26`, routes.get(`10.244.${op.i}.0/26`)?.nextHop));
              break;
            case 'peer-state':
              a.speaker().emit('peer-state');
              break;
            case 'pause':
              await new Promise((r) => setTimeout(r, 25));
              break;
          }
        }
        await settle(a.agent);
        const fresh = await startAgent(ds, join(dir, `b${run}`), learned);
        try {
          const applied = a.speaker().configs.at(-1)!;
          const full = fresh.speaker().configs.at(-1)!;
          assert.deepEqual(applied, full);
          assert.deepEqual(a.dataplane.updates.at(-1), fresh.dataplane.updates.at(-1));
        } finally {
          await fresh.agent.stop();
        }
      } finally {
        await a.agent.stop();
        run++;
      }
    }),
    { numRuns: 60 },
  );
});

test("another node's pods, allocations and affinities cost no recompute; an address this node borrowed does", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-coalesce-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  await put(ds, node(2));
  await put(ds, block(3, 2));
  const h = await startAgent(ds, dir, () => []);
  t.after(() => h.agent.stop());
  const sp = h.speaker();
  const originated = (): string[] => [...(sp.configs.at(-1)!.originate ?? [])].sort();
  const before = { configs: sp.configs.length, updates: h.dataplane.updates.length, plans: h.agent.counts.plans, skipped: h.agent.counts.irrelevantEvents };

  // Node 2's pod: its WorkloadEndpoint, an allocation in node 2's block, node 2's new affinity.
  await put(ds, wep(1, 9, 2));
  await put(ds, block(3, 2, [[9, 2]]));
  await put(ds, affinity(4, 2));
  await settle(h.agent);
  assert.equal(h.agent.counts.plans, before.plans, 'no plan recompute');
  assert.equal(h.dataplane.updates.length, before.updates, 'no dataplane update');
  assert.equal(h.agent.counts.irrelevantEvents, before.skipped + 3);

  // A pod of this node got an address from node 2's block: this node exports it (a borrowed /32).
  await put(ds, block(3, 2, [[9, 2], [10, 0]]));
  await settle(h.agent);
  assert.equal(h.agent.counts.plans, before.plans + 1);
  assert.ok(originated().includes('10.244.3.10/32'), originated().join(', '));
  // This node's own pod and affinity: recomputed.
  const updates = h.dataplane.updates.length;
  await put(ds, wep(2, 11, 0));
  await settle(h.agent);
  assert.equal(h.dataplane.updates.length, updates + 1);
  await put(ds, affinity(5, 0));
  await settle(h.agent);
  assert.equal(h.agent.counts.plans, before.plans + 2);
});
