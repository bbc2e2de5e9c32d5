import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { MemoryDatastore } from '../../datastore/memory.js';
import { silentLogger } from '../../lib/log.js';
import { parseNodeConfig } from '../../node/config.js';
import { NodeAgent, type SpeakerConfigLike, type SpeakerLike } from '../../node/agent.js';
import { readStatus, formatNodeStatus } from '../../node/status.js';
import type { BGPFilter, BGPPeer, IPPool, Node } from '../../api/types.js';
import { Ipam } from '../../ipam/ipam.js';

class FakeSpeaker extends EventEmitter implements SpeakerLike {
  configs: SpeakerConfigLike[] = [];
  states = new Map<string, string>();
  constructor(cfg: SpeakerConfigLike) {
    super();
    this.configs.push(cfg);
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async setConfig(cfg: SpeakerConfigLike): Promise<void> {
    this.configs.push(cfg);
  }
  status() {
    const cfg = this.configs.at(-1)!;
    return { peers: cfg.peers.map((p) => ({ address: p.address, port: p.port ?? 179, peerType: p.description ?? '', state: this.states.get(p.address) ?? 'Active', since: '2026-11-23T08:00:00Z', info: this.states.get(p.address) === 'Established' ? 'Established' : 'Socket: Connection refused', prefixes: { received: 0 } })) };
  }
  routes() {
    return [];
  }
}

test('agent on a memory datastore: registers, default pool, mesh peers, live updates, status + readiness', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-agent-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: '10.0.0.2/24', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), CALICO_IPV4POOL_CIDR: '10.244.0.0/16', CALICO_IPV4POOL_VXLAN: 'Always', DATASTORE_TYPE: 'memory' });
  cfg.felix.healthPort = 0;
  let speaker: FakeSpeaker | undefined;
  let clock = 1_000_000;
  const agent = new NodeAgent(cfg, {
    ds,
    log: silentLogger(),
    detect: async () => assert.fail('static IP: no autodetection'),
    hostMtu: async () => 1500,
    speaker: (c) => (speaker = new FakeSpeaker(c)),
    now: () => clock,
  });
  t.after(() => agent.stop());
  await agent.start();
  await agent.settle();

  const me = await ds.get<Node>('Node', 'node-a');
  assert.equal(me.spec?.bgp?.ipv4Address, '10.0.0.2/24');
  const pools = (await ds.list<IPPool>('IPPool')).items;
  assert.deepEqual(pools.map((p) => [p.metadata.name, p.spec.cidr, p.spec.vxlanMode]), [['default-ipv4-ippool', '10.244.0.0/16', 'Always']]);
  assert.equal(await readFile(join(dir, 'lib', 'mtu'), 'utf8'), '1450\n');
  assert.equal(await readFile(join(dir, 'lib', 'nodename'), 'utf8'), 'node-a');
  assert.ok(speaker);
  assert.deepEqual(speaker.configs.at(-1)!.peers, []);
  // felix keeps the kernel routes across agent restarts: peers are told so (GR F bit).
  assert.deepEqual(speaker.configs.at(-1)!.gracefulRestart, { forwardingPreserved: true });

  // A second node appears: a mesh peer, live.
  await ds.create<Node>({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'node-b' }, spec: { bgp: { ipv4Address: '10.0.0.3/24' } } });
  await new Promise((r) => setTimeout(r, 50));
  await agent.settle();
  assert.deepEqual(speaker.configs.at(-1)!.peers.map((p) => [p.address, p.passive ?? false, p.description]), [['10.0.0.3', true, 'node-to-node mesh']]);

  // A BGPFilter and a global peer that names it: the speaker gets the filter resource itself, live.
  await ds.create<BGPFilter>({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPFilter',
    metadata: { name: 'no-default' },
    spec: { exportV4: [{ action: 'Reject', cidr: '0.0.0.0/0', matchOperator: 'Equal' }] },
  });
  await ds.create<BGPPeer>({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'tor' }, spec: { peerIP: '10.0.0.254', asNumber: 64512, filters: ['no-default'] } });
  await new Promise((r) => setTimeout(r, 50));
  await agent.settle();
  const withFilter = speaker.configs.at(-1)!;
  assert.deepEqual(withFilter.filters?.map((f) => f.name), ['no-default']);
  assert.deepEqual(withFilter.filters?.[0]?.spec.exportV4?.[0]?.cidr, '0.0.0.0/0');
  assert.deepEqual(withFilter.peers.find((p) => p.address === '10.0.0.254')?.filters, ['no-default']);
  await ds.delete('BGPPeer', 'tor');
  await new Promise((r) => setTimeout(r, 50));
  await agent.settle();

  let st = await readStatus(cfg.runDir);
  assert.equal(st.health.ready, false);
  assert.equal(st.health.components.bgp?.detail, 'BGP not established with 10.0.0.3');
  assert.match(formatNodeStatus(st), /\| 10\.0\.0\.3 {5}\| node-to-node mesh \| start \| 08:00:00 \| Active Socket: Connection refused \|/);
  const r503 = await fetch(`http://127.0.0.1:${agent.healthPort}/readiness`);
  assert.equal(r503.status, 503);

  speaker.states.set('10.0.0.3', 'Established');
  speaker.emit('peer-state');
  await agent.settle();
  st = await readStatus(cfg.runDir);
  assert.equal(st.health.ready, true);
  assert.equal(st.bgp.peers[0]?.info, 'Established');
  assert.equal((await fetch(`http://127.0.0.1:${agent.healthPort}/readiness`)).status, 200);
  clock += 1; // keep the injected clock in use
});

test('an existing pool suppresses the default pool; re-registration preserves routeReflectorClusterID', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-agent-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  await ds.create<IPPool>({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'mine' }, spec: { cidr: '10.50.0.0/16' } });
  await ds.create<Node>({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'node-a', labels: { x: 'y' } }, spec: { bgp: { ipv4Address: '10.9.9.9/24', routeReflectorClusterID: '244.0.0.1' } } });
  const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: '10.0.0.2/24', AS: '65001', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), DATASTORE_TYPE: 'memory', FELIX_HEALTHENABLED: 'false' });
  const agent = new NodeAgent(cfg, { ds, log: silentLogger(), detect: async () => assert.fail('no') });
  t.after(() => agent.stop());
  await agent.start();
  await agent.settle();
  const me = await ds.get<Node>('Node', 'node-a');
  assert.deepEqual(me.spec?.bgp, { ipv4Address: '10.0.0.2/24', routeReflectorClusterID: '244.0.0.1', asNumber: 65001 });
  assert.deepEqual(me.metadata.labels, { x: 'y' });
  assert.deepEqual((await ds.list<IPPool>('IPPool')).items.map((p) => p.metadata.name), ['mine']);
  const st = await readStatus(cfg.runDir);
  assert.equal(st.ip.source, 'from the IP environment variable (10.0.0.2/24)');
  assert.equal(st.bgp.reason, 'BGP speaker not wired');
});

test('switching a pool to VXLAN allocates the tunnel address live', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-agent-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: '10.0.0.2/24', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), DATASTORE_TYPE: 'memory', FELIX_HEALTHENABLED: 'false', CALICO_IPV4POOL_CIDR: '10.244.0.0/16' });
  const agent = new NodeAgent(cfg, { ds, log: silentLogger(), detect: async () => assert.fail('no'), ipam: new Ipam({ datastore: ds }) });
  t.after(() => agent.stop());
  await agent.start();
  await agent.settle();
  assert.equal((await ds.get<Node>('Node', 'node-a')).spec?.ipv4VXLANTunnelAddr, undefined);
  const pool = await ds.get<IPPool>('IPPool', 'default-ipv4-ippool');
  await ds.update<IPPool>({ ...pool, spec: { ...pool.spec, vxlanMode: 'Always' } });
  let addr: string | undefined;
  for (let i = 0; i < 100 && !addr; i++) {
    await new Promise((r) => setTimeout(r, 20));
    await agent.settle();
    addr = (await ds.get<Node>('Node', 'node-a')).spec?.ipv4VXLANTunnelAddr;
  }
  assert.match(addr ?? '', /^10\.244\./);
});

test('graceful restart, restarting role: kept kernel routes → R bit + bounded End-of-RIB deferral; status says so; TABBY_GR_DEFERRAL_TIME=0 turns it off', async (t) => {
  const { restartStateFrom } = await import('../../node/graceful.js');
  assert.deepEqual(restartStateFrom(0).restarting, false);
  assert.equal(restartStateFrom(3).restarting, true);
  assert.match(restartStateFrom(3).detail, /3 kernel route\(s\) of protocol 80/);
  const run = async (kept: number, env: Record<string, string> = {}) => {
    const dir = await mkdtemp(join(tmpdir(), 'tk5-agent-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: '10.0.0.2/24', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), DATASTORE_TYPE: 'memory', ...env });
    cfg.felix.healthEnabled = false;
    let speaker: FakeSpeaker | undefined;
    let deferring = true;
    const agent = new NodeAgent(cfg, {
      ds: new MemoryDatastore(),
      log: silentLogger(),
      detect: async () => assert.fail('static IP'),
      hostMtu: async () => 1500,
      speaker: (c) => {
        speaker = new FakeSpeaker(c);
        const status = speaker.status.bind(speaker);
        return Object.assign(speaker, { status: () => ({ ...status(), deferringAdvertisements: deferring }) });
      },
      restartState: async () => restartStateFrom(kept),
    });
    t.after(() => agent.stop());
    await agent.start();
    await agent.settle();
    return { gr: speaker!.configs.at(-1)!.gracefulRestart, agent, release: () => (deferring = false) };
  };
  const restarted = await run(4);
  assert.deepEqual(restarted.gr, { forwardingPreserved: true, restarting: true, deferralTime: 30 });
  assert.match(restarted.agent.snapshot().bgp.gracefulRestart ?? '', /4 kernel route\(s\).*restarting \(R bit\): advertisements held until the peers' End-of-RIB \(≤ 30 s\)/);
  assert.match(formatNodeStatus(restarted.agent.snapshot()), /Graceful restart: .*restarting \(R bit\)/);
  restarted.release();
  assert.match(restarted.agent.snapshot().bgp.gracefulRestart ?? '', /restart done/);

  assert.deepEqual((await run(0)).gr, { forwardingPreserved: true }, 'first start: no R bit');
  assert.deepEqual((await run(4, { TABBY_GR_DEFERRAL_TIME: '1m' })).gr, { forwardingPreserved: true, restarting: true, deferralTime: 60 });
  assert.deepEqual((await run(4, { TABBY_GR_DEFERRAL_TIME: '0' })).gr, { forwardingPreserved: true }, 'deferral 0: no restarting role');
});
