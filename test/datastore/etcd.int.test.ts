/** The contract suite and etcd-specific faults against a real etcd started by the test (unreachable-endpoint tests need no etcd). */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { createEtcdDatastore } from '../../datastore/etcd.js';
import { UnavailableError } from '../../datastore/types.js';
import { datastoreContract, EventLog, pool, replay } from './contract.js';
import { etcdMissing, freePort, startEtcd, startTcpProxy, type EtcdHarness, type TcpProxy } from './etcd-harness.js';

const missing = etcdMissing();
let etcd: EtcdHarness | undefined;
let proxy: TcpProxy | undefined;

before(async () => {
  if (missing) return;
  etcd = await startEtcd({ clientPorts: [23790, 23796], peerPorts: [23800, 23809] });
  proxy = await startTcpProxy(etcd.clientPort);
});
after(async () => {
  await proxy?.close();
  await etcd?.stop();
});

for (const transport of ['grpc', 'http'] as const) {
  datastoreContract(
    transport === 'grpc' ? 'etcdv3' : 'etcdv3 over the HTTP gateway',
    async () => {
      const e = etcd as EtcdHarness;
      const p = proxy as TcpProxy;
      p.restore();
      const writer = await createEtcdDatastore({ endpoints: [e.endpoint], transport });
      // fresh store: remove everything a previous test left
      await writer.wipe();
      const ds = await createEtcdDatastore({ endpoints: [p.endpoint], transport });
      return {
        ds,
        writer,
        faults: {
          cutWatches: async () => p.cut(),
          restoreWatches: async () => p.restore(),
          compact: () => writer.compact(),
        },
        cleanup: async () => {
          await ds.close();
          await writer.close();
        },
      };
    },
    { skip: missing },
  );
}

test('etcd: the HTTP and gRPC transports read each other\'s writes (same keys, same resourceVersions)', async (t) => {
  if (missing) return t.skip(missing);
  const e = etcd as EtcdHarness;
  const grpc = await createEtcdDatastore({ endpoints: [e.endpoint] });
  const web = await createEtcdDatastore({ endpoints: [e.endpoint], transport: 'http' });
  t.after(async () => {
    await grpc.close();
    await web.close();
  });
  await grpc.wipe();
  const a = await grpc.create(pool('x-a', '10.1.0.0/16'));
  assert.deepEqual(await web.get('IPPool', 'x-a'), a);
  const b = await web.update({ ...a, metadata: { ...a.metadata, labels: { via: 'http' } } });
  assert.deepEqual(await grpc.get('IPPool', 'x-a'), b);
  assert.deepEqual((await web.list('IPPool')).items, (await grpc.list('IPPool')).items);
});

test('etcd HTTP transport: unreachable endpoint rejects with UnavailableError naming it', async () => {
  const port = await freePort(23797, 23798);
  const endpoint = `http://127.0.0.1:${port}`;
  const ds = await createEtcdDatastore({ endpoints: [endpoint], requestTimeoutMs: 2000, transport: 'http' });
  try {
    for (const op of [() => ds.get('IPPool', 'x'), () => ds.list('IPPool'), () => ds.create(pool('x', '10.0.0.0/8'))]) {
      await assert.rejects(op(), (e: unknown) => e instanceof UnavailableError && e.message.includes(endpoint));
    }
  } finally {
    await ds.close();
  }
});

test('etcd: unreachable endpoint rejects with UnavailableError naming it', async () => {
  const port = await freePort(23797, 23798);
  const endpoint = `http://127.0.0.1:${port}`;
  const ds = await createEtcdDatastore({ endpoints: [endpoint], requestTimeoutMs: 2000 });
  try {
    for (const op of [() => ds.get('IPPool', 'x'), () => ds.list('IPPool'), () => ds.create(pool('x', '10.0.0.0/8'))]) {
      await assert.rejects(op(), (e: unknown) => e instanceof UnavailableError && e.message.includes(endpoint) && e.code === 'Unavailable');
    }
  } finally {
    await ds.close();
  }
});

test('etcd: an endpoint that accepts but never answers rejects with UnavailableError instead of hanging', async () => {
  // A loopback listener that takes the TCP connection and says nothing (like a filtered or wedged
  // server); test traffic stays on loopback.
  const held: net.Socket[] = [];
  const silent = net.createServer((sock) => held.push(sock));
  const port = await freePort(23797, 23798);
  await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', resolve));
  const ds = await createEtcdDatastore({ endpoints: [`http://127.0.0.1:${port}`], requestTimeoutMs: 1000 });
  try {
    await assert.rejects(ds.get('IPPool', 'x'), (e: unknown) => e instanceof UnavailableError && e.message.includes(`127.0.0.1:${port}`));
  } finally {
    await ds.close();
    for (const sock of held) sock.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test('etcd: keys follow the documented layout, values carry no resourceVersion', { skip: missing }, async () => {
  const e = etcd as EtcdHarness;
  const ds = await createEtcdDatastore({ endpoints: [e.endpoint] });
  try {
    const c = ds.rawClient;
    await ds.wipe();
    const created = await ds.create(pool('layout', '10.90.0.0/16'));
    await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name: 'w', namespace: 'ns' }, spec: {} });
    const raw = await c.get('/calico/resources/v3/projectcalico.org/ippools/layout').string();
    assert.ok(raw, 'cluster-scoped key present');
    const stored = JSON.parse(raw) as { metadata: Record<string, unknown>; spec: unknown };
    assert.equal(stored.metadata.resourceVersion, undefined);
    assert.deepEqual(stored.spec, created.spec);
    assert.ok(await c.get('/calico/resources/v3/projectcalico.org/workloadendpoints/ns/w').exists(), 'namespaced key present');
  } finally {
    await ds.close();
  }
});

for (const transport of ['grpc', 'http'] as const) {
  test(`etcd (${transport}): watch survives an etcd restart without losing or duplicating events`, { skip: missing }, async () => {
    const e = etcd as EtcdHarness;
    const p = proxy as TcpProxy;
    p.restore();
    const writer = await createEtcdDatastore({ endpoints: [e.endpoint], transport });
    const ds = await createEtcdDatastore({ endpoints: [p.endpoint], transport });
    const log = new EventLog();
    try {
      await writer.wipe();
      await writer.create(pool('before', '10.100.0.0/16'));
      log.start(ds, 'IPPool');
      await log.waitForCount('SYNCED', 1);
      // changes right before the crash may or may not reach the watcher before it goes down
      const a = await writer.create(pool('r-a', '10.101.0.0/16'));
      await writer.update({ ...a, metadata: { ...a.metadata, labels: { v: '1' } } });
      await e.restart();
      await writer.create(pool('r-b', '10.102.0.0/16'));
      await writer.delete('IPPool', 'before');
      await log.waitFor((evs) => evs.some((x) => x.type === 'DELETED'), 'DELETED before');
      assert.deepEqual(log.summary(), ['ADDED before', 'SYNCED', 'ADDED r-a', 'MODIFIED r-a', 'ADDED r-b', 'DELETED before']);
      assert.ok(log.events.some((x) => x.type === 'ERROR'), 'the disconnect was reported as an informational ERROR event');
      const state = new Map((await writer.list('IPPool')).items.map((o) => [o.metadata.name, o.metadata.resourceVersion ?? '']));
      assert.deepEqual(replay(log.events), state);
    } finally {
      await log.stop();
      await ds.close();
      await writer.close();
    }
  });

  test(`etcd (${transport}): a watch on an unreachable endpoint reports ERROR events and keeps retrying`, async (t) => {
    const port = await freePort(23797, 23798);
    const ds = await createEtcdDatastore({ endpoints: [`http://127.0.0.1:${port}`], requestTimeoutMs: 500, transport });
    const log = new EventLog().start(ds, 'IPPool');
    t.after(async () => {
      await log.stop();
      await ds.close();
    });
    await log.waitForCount('ERROR', 2);
    assert.ok(log.events.every((e) => e.type === 'ERROR' && e.error instanceof UnavailableError));
  });
}

test('etcd HTTP transport: a watch moves on to the next endpoint when one is down', { skip: missing }, async () => {
  const e = etcd as EtcdHarness;
  const port = await freePort(23797, 23798);
  const ds = await createEtcdDatastore({ endpoints: [`http://127.0.0.1:${port}`, e.endpoint], requestTimeoutMs: 1000, transport: 'http' });
  const log = new EventLog();
  try {
    await ds.wipe();
    log.start(ds, 'IPPool');
    await log.waitForCount('SYNCED', 1);
    await ds.create(pool('m-a', '10.103.0.0/16'));
    await log.waitForCount('ADDED', 1);
    assert.deepEqual(log.summary(), ['SYNCED', 'ADDED m-a']);
  } finally {
    await log.stop();
    await ds.close();
  }
});
