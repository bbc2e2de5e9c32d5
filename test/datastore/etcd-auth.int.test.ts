/**
 * The HTTP gateway transport with etcd authentication (ETCD_USERNAME / ETCD_PASSWORD): tokens that
 * expire (etcd `--auth-token-ttl 1`) are fetched again, for unary calls and for a watch that has to
 * reconnect; a wrong password is a typed error.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createEtcdDatastore } from '../../datastore/etcd.js';
import { DatastoreError } from '../../datastore/types.js';
import { EventLog, pool, replay } from './contract.js';
import { etcdMissing, startEtcd, startTcpProxy, type EtcdHarness, type TcpProxy } from './etcd-harness.js';

const missing = etcdMissing();
let etcd: EtcdHarness | undefined;
let proxy: TcpProxy | undefined;

async function gateway(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${(etcd as EtcdHarness).endpoint}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, `${path}: ${await res.text()}`);
}

before(async () => {
  if (missing) return;
  etcd = await startEtcd({ clientPorts: [23794, 23796], peerPorts: [23804, 23806], extraArgs: ['--auth-token', 'simple', '--auth-token-ttl', '1'] });
  proxy = await startTcpProxy(etcd.clientPort, [23797, 23799]);
  await gateway('/v3/auth/user/add', { name: 'root', password: 'pw' });
  await gateway('/v3/auth/role/add', { name: 'root' });
  await gateway('/v3/auth/user/grant', { user: 'root', role: 'root' });
  await gateway('/v3/auth/enable', {});
});
after(async () => {
  await proxy?.close();
  await etcd?.stop();
});

const idle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('etcd HTTP transport with auth: expired tokens are renewed for calls and for a reconnecting watch', { skip: missing }, async () => {
  const e = etcd as EtcdHarness;
  const p = proxy as TcpProxy;
  const writer = await createEtcdDatastore({ endpoints: [e.endpoint], transport: 'http', username: 'root', password: 'pw' });
  const ds = await createEtcdDatastore({ endpoints: [p.endpoint], transport: 'http', username: 'root', password: 'pw' });
  const log = new EventLog();
  try {
    await writer.wipe();
    await writer.create(pool('au-a', '10.120.0.0/16'));
    log.start(ds, 'IPPool');
    await log.waitForCount('SYNCED', 1);
    await idle(2500); // both clients' tokens expire (TTL 1 s, renewed by use only)
    await writer.create(pool('au-b', '10.121.0.0/16'));
    await log.waitForCount('ADDED', 2);
    p.cut();
    await writer.create(pool('au-c', '10.122.0.0/16'));
    p.restore();
    await log.waitForCount('ADDED', 3);
    // no relist: the watch resumed from its revision with a fresh token
    assert.deepEqual(log.summary(), ['ADDED au-a', 'SYNCED', 'ADDED au-b', 'ADDED au-c']);
    assert.deepEqual(replay(log.events), new Map((await writer.list('IPPool')).items.map((o) => [o.metadata.name, o.metadata.resourceVersion ?? ''])));
  } finally {
    await log.stop();
    await ds.close();
    await writer.close();
  }
});

test('etcd HTTP transport with auth: a wrong password is an EtcdAuth error', { skip: missing }, async () => {
  const ds = await createEtcdDatastore({ endpoints: [(etcd as EtcdHarness).endpoint], transport: 'http', username: 'root', password: 'nope' });
  try {
    await assert.rejects(ds.get('IPPool', 'x'), (err: unknown) => err instanceof DatastoreError && err.code === 'EtcdAuth');
  } finally {
    await ds.close();
  }
});
