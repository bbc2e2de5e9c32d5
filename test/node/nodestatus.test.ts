import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDatastore } from '../../datastore/memory.js';
import type { Datastore } from '../../datastore/types.js';
import type { Resource } from '../../api/meta.js';
import type { CalicoNodeStatus } from '../../api/types.js';
import { silentLogger } from '../../lib/log.js';
import { buildNodeStatus, NodeStatusReporter, type NodeStatusInputs } from '../../node/nodestatus.js';

const NOW = new Date('2026-11-23T10:00:05.123Z');

const inputs: NodeStatusInputs = {
  bgpRunning: true,
  routerId: '10.0.0.1',
  version: 'tabby v0.1.0',
  bootTime: new Date('2026-11-23T09:00:00Z'),
  lastReconfiguration: new Date('2026-11-23T09:30:00Z'),
  interface: 'eth0',
  peers: [
    { address: '10.0.0.2', type: 'node-to-node mesh', state: 'Established', since: '2026-11-23T09:00:02Z' },
    { address: '10.0.0.254', type: 'global', state: 'Active', since: '2026-11-23T09:00:01Z' },
    { address: '10.0.0.9', type: 'node specific', state: 'weird', since: '2026-11-23T09:00:01Z' },
    { address: 'fd00::2', type: 'node-to-node mesh', state: 'Established', since: '2026-11-23T09:00:03Z' },
  ],
  routes: [
    { prefix: '10.244.1.0/26', from: 'local', blackholed: true },
    { prefix: '10.96.0.0/12', from: 'local' },
    { prefix: '10.244.2.0/26', from: '10.0.0.2', nextHop: '10.0.0.2' },
    { prefix: '172.16.0.0/16', from: '10.0.0.254', nextHop: '10.0.0.250' },
  ],
};

test('buildNodeStatus: Agent, BGP and Routes classes in Calico field shapes', () => {
  assert.deepEqual(buildNodeStatus(['Agent', 'BGP', 'Routes'], inputs, NOW), {
    lastUpdated: '2026-11-23T10:00:05Z',
    agent: { birdV4: { state: 'Ready', version: 'tabby v0.1.0', routerID: '10.0.0.1', lastBootTime: '2026-11-23 09:00:00', lastReconfigurationTime: '2026-11-23 09:30:00' } },
    bgp: {
      numberEstablishedV4: 1,
      numberNotEstablishedV4: 2,
      numberEstablishedV6: 1,
      numberNotEstablishedV6: 0,
      peersV4: [
        { peerIP: '10.0.0.2', type: 'NodeMesh', state: 'Established', since: '2026-11-23 09:00:02' },
        { peerIP: '10.0.0.254', type: 'GlobalPeer', state: 'Active', since: '2026-11-23 09:00:01' },
        { peerIP: '10.0.0.9', type: 'NodePeer', state: 'Idle', since: '2026-11-23 09:00:01' },
      ],
      peersV6: [{ peerIP: 'fd00::2', type: 'NodeMesh', state: 'Established', since: '2026-11-23 09:00:03' }],
    },
    routes: {
      routesV4: [
        { type: 'FIB', destination: '10.244.1.0/26', learnedFrom: { sourceType: 'Static' } },
        { type: 'RIB', destination: '10.96.0.0/12', learnedFrom: { sourceType: 'Static' } },
        { type: 'FIB', destination: '10.244.2.0/26', gateway: '10.0.0.2', interface: 'eth0', learnedFrom: { sourceType: 'NodeMesh', peerIP: '10.0.0.2' } },
        { type: 'FIB', destination: '172.16.0.0/16', gateway: '10.0.0.250', interface: 'eth0', learnedFrom: { sourceType: 'BGPPeer', peerIP: '10.0.0.254' } },
      ],
      routesV6: [],
    },
  });
});

test('buildNodeStatus: only the classes asked for; BGP not running → birdV4 NotReady', () => {
  assert.deepEqual(buildNodeStatus(['BGP'], { ...inputs, peers: [] }, NOW), {
    lastUpdated: '2026-11-23T10:00:05Z',
    bgp: { numberEstablishedV4: 0, numberNotEstablishedV4: 0, numberEstablishedV6: 0, numberNotEstablishedV6: 0, peersV4: [], peersV6: [] },
  });
  assert.deepEqual(buildNodeStatus(['Agent'], { ...inputs, bgpRunning: false }, NOW).agent, { birdV4: { state: 'NotReady', version: 'tabby v0.1.0' } });
  assert.deepEqual(buildNodeStatus([], inputs, NOW), { lastUpdated: '2026-11-23T10:00:05Z' });
});

function cns(name: string, node: string, spec: Partial<CalicoNodeStatus['spec']> = {}): CalicoNodeStatus {
  return { apiVersion: 'projectcalico.org/v3', kind: 'CalicoNodeStatus', metadata: { name }, spec: { node, classes: ['Agent', 'BGP'], updatePeriodSeconds: 30, ...spec } };
}

async function until(what: string, fn: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`gave up waiting for ${what}`);
}

test('NodeStatusReporter: writes the status of resources naming this node, keeps the spec, stops on 0 and on delete', async (t) => {
  const ds = new MemoryDatastore();
  await ds.create(cns('mine', 'node-a'));
  await ds.create(cns('other', 'node-b'));
  const rep = new NodeStatusReporter({ ds, nodeName: 'node-a', log: silentLogger(), collect: () => inputs, now: () => NOW });
  t.after(() => rep.stop());
  rep.start();
  await until('first write', async () => (await ds.get<CalicoNodeStatus>('CalicoNodeStatus', 'mine')).status !== undefined);
  await rep.settle();
  const mine = await ds.get<CalicoNodeStatus>('CalicoNodeStatus', 'mine');
  assert.deepEqual(mine.spec, cns('mine', 'node-a').spec, 'spec untouched');
  assert.deepEqual(mine.status, buildNodeStatus(['Agent', 'BGP'], inputs, NOW));
  assert.equal((await ds.get<CalicoNodeStatus>('CalicoNodeStatus', 'other')).status, undefined, "another node's resource is not ours");
  assert.deepEqual(rep.reporting(), ['mine']);

  // updatePeriodSeconds: 0 → stop updating.
  await ds.update<CalicoNodeStatus>({ ...mine, spec: { ...mine.spec, updatePeriodSeconds: 0 } });
  await until('reporting stopped', () => rep.reporting().length === 0);
  // Back to a period: reporting again, with the new classes.
  const cur = await ds.get<CalicoNodeStatus>('CalicoNodeStatus', 'mine');
  await ds.update<CalicoNodeStatus>({ ...cur, spec: { ...cur.spec, updatePeriodSeconds: 5, classes: ['Routes'] } });
  await until('routes written', async () => (await ds.get<CalicoNodeStatus>('CalicoNodeStatus', 'mine')).status?.routes !== undefined);
  await rep.settle();
  const again = await ds.get<CalicoNodeStatus>('CalicoNodeStatus', 'mine');
  assert.equal(again.status?.bgp, undefined);
  await ds.delete('CalicoNodeStatus', 'mine');
  await until('reporting stopped after delete', () => rep.reporting().length === 0);
});

test('NodeStatusReporter.write: a concurrent spec change costs a retry (CAS), never the other writer\'s spec', async () => {
  const mem = new MemoryDatastore();
  await mem.create(cns('mine', 'node-a'));
  let raced = false;
  // A store whose first update loses the race against another writer changing the spec.
  const racing: Datastore = Object.assign(Object.create(mem) as MemoryDatastore, {
    update: async <T extends Resource>(obj: T): Promise<T> => {
      if (!raced) {
        raced = true;
        const cur = await mem.get<CalicoNodeStatus>('CalicoNodeStatus', 'mine');
        await mem.update<CalicoNodeStatus>({ ...cur, spec: { ...cur.spec, classes: ['Agent'] } });
      }
      return mem.update(obj);
    },
  });
  const rep = new NodeStatusReporter({ ds: racing, nodeName: 'node-a', log: silentLogger(), collect: () => inputs, now: () => NOW });
  await rep.write('mine');
  assert.equal(raced, true);
  const got = await mem.get<CalicoNodeStatus>('CalicoNodeStatus', 'mine');
  assert.deepEqual(got.spec.classes, ['Agent'], "the other writer's spec stays");
  assert.deepEqual(got.status, buildNodeStatus(['Agent'], inputs, NOW), 'status built for the spec it was written against');
  await rep.write('gone'); // NotFound: no error
});
