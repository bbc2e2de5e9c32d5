/** The contract suite and Kubernetes-specific behaviour against the API-faithful test server. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { KINDS } from '../../api/kinds.js';
import { KUBERNETES_API_CALLS, createKubernetesDatastore } from '../../datastore/kubernetes.js';
import { DatastoreConfigError, UnavailableError } from '../../datastore/types.js';
import { startK8sDatastore, startK8sTestServer, writeKubeconfig, type K8sDatastoreHarness, type K8sTestServerOptions } from '../k8s-server/harness.js';
import { freePort } from './etcd-harness.js';
import { datastoreContract, EventLog, pool, replay } from './contract.js';

async function setup(opts: K8sTestServerOptions = {}): Promise<K8sDatastoreHarness> {
  return startK8sDatastore({ bookmarkIntervalMs: 200, ...opts });
}

datastoreContract('kubernetes (test API server)', async () => {
  const { srv, ds, cleanup } = await setup();
  return {
    ds,
    writer: ds,
    faults: {
      cutWatches: async () => srv.breakWatches(),
      restoreWatches: async () => srv.restoreWatches(),
      compact: async () => srv.compact(),
    },
    cleanup,
  };
});

test('kubernetes: objects are stored as crd.projectcalico.org/v1 custom resources', async (t) => {
  const { srv, ds, cleanup } = await setup();
  t.after(cleanup);
  await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPAMConfiguration', metadata: { name: 'default' }, spec: { strictAffinity: false } });
  const res = await fetch(`${srv.url}/apis/crd.projectcalico.org/v1/ipamconfigs/default`, { headers: { authorization: `Bearer ${srv.token}` } });
  const raw = (await res.json()) as { apiVersion: string; kind: string };
  assert.equal(raw.apiVersion, 'crd.projectcalico.org/v1');
  assert.equal(raw.kind, 'IPAMConfig');
  const back = await ds.get('IPAMConfiguration', 'default');
  assert.equal(back.apiVersion, 'projectcalico.org/v3');
  assert.equal(back.kind, 'IPAMConfiguration');
});

test('kubernetes: every API call made is declared in KUBERNETES_API_CALLS', async (t) => {
  const { srv, ds, cleanup } = await setup();
  t.after(cleanup);
  const v1 = await ds.create(pool('rbac', '10.0.0.0/16'));
  await ds.get('IPPool', 'rbac');
  await ds.list('IPPool', { labelSelector: 'a=b' });
  await ds.update(v1).catch(() => undefined);
  await ds.delete('IPPool', 'rbac');
  const log = new EventLog().start(ds, 'IPPool');
  await log.waitForCount('SYNCED', 1);
  await ds.create(pool('rbac2', '10.1.0.0/16'));
  await log.waitForCount('ADDED', 1);
  await log.stop();
  const declared = new Set(KUBERNETES_API_CALLS.map((c) => `${c.verb} ${c.group}/${c.resource}`));
  const used = new Set(srv.requests.map((r) => `${r.verb} ${r.group}/${r.resource}`));
  for (const u of used) assert.ok(declared.has(u), `undeclared API call ${u}`);
  for (const verb of ['get', 'list', 'watch', 'create', 'update', 'delete']) assert.ok(used.has(`${verb} crd.projectcalico.org/ippools`), `exercised ${verb}`);
  assert.equal(KUBERNETES_API_CALLS.length, KINDS.length * 6);
});

test('kubernetes: the watch resumes after server-side timeouts using bookmarks, without duplicates', async (t) => {
  const { srv, ds, cleanup } = await setup({ bookmarkIntervalMs: 50 });
  t.after(cleanup);
  srv.setWatchTimeout(300);
  const log = new EventLog().start(ds, 'IPPool');
  try {
    await log.waitForCount('SYNCED', 1);
    for (let i = 0; i < 5; i++) {
      await ds.create(pool(`to-${i}`, `10.${i}.0.0/16`));
      await new Promise((r) => setTimeout(r, 150)); // spread writes over several watch connections
    }
    await log.waitForCount('ADDED', 5);
    assert.deepEqual(log.summary(), ['SYNCED', 'ADDED to-0', 'ADDED to-1', 'ADDED to-2', 'ADDED to-3', 'ADDED to-4']);
    assert.deepEqual(replay(log.events).size, 5);
  } finally {
    await log.stop();
  }
});

test('kubernetes: a watch whose resourceVersion expired (410) relists', async (t) => {
  const { ds, cleanup } = await setup({ retainEvents: 2 });
  t.after(cleanup);
  await ds.create(pool('g1', '10.1.0.0/16'));
  const { revision } = await ds.list('IPPool');
  for (let i = 2; i <= 5; i++) await ds.create(pool(`g${i}`, `10.${i}.0.0/16`));
  const log = new EventLog().start(ds, 'IPPool', { revision });
  try {
    await log.waitForCount('SYNCED', 1);
    assert.deepEqual(log.summary().sort(), ['ADDED g2', 'ADDED g3', 'ADDED g4', 'ADDED g5', 'SYNCED'].sort());
    assert.ok(log.events.some((e) => e.type === 'ERROR' && /too old/.test(e.error.message)));
  } finally {
    await log.stop();
  }
});

test('kubernetes: an HTTP 410 answer to a watch also relists', async (t) => {
  const { srv, ds, cleanup } = await setup({ expiredAs: 'status' });
  t.after(cleanup);
  const a = await ds.create(pool('h1', '10.1.0.0/16'));
  await ds.create(pool('h2', '10.2.0.0/16'));
  const log = new EventLog().start(ds, 'IPPool');
  try {
    await log.waitForCount('SYNCED', 1);
    srv.breakWatches();
    await ds.update({ ...a, metadata: { ...a.metadata, labels: { x: '1' } } });
    await ds.delete('IPPool', 'h2');
    await ds.create(pool('h3', '10.3.0.0/16'));
    srv.compact();
    srv.restoreWatches();
    await log.waitForCount('SYNCED', 2);
    const after = log.summary().slice(3);
    assert.deepEqual(after.sort(), ['ADDED h3', 'DELETED h2', 'MODIFIED h1', 'SYNCED'].sort());
  } finally {
    await log.stop();
  }
});

test('kubernetes: unreachable API server rejects with UnavailableError naming it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabby-kube-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort(23790, 23799);
  const url = `http://127.0.0.1:${port}`;
  const ds = await createKubernetesDatastore({ kubeconfig: await writeKubeconfig(join(dir, 'kc'), { url, token: 'x' }), requestTimeoutMs: 3000 });
  await assert.rejects(ds.get('IPPool', 'x'), (e: unknown) => e instanceof UnavailableError && e.message.includes(url));
  await assert.rejects(ds.list('IPPool'), UnavailableError);
  await ds.close();
});

test('kubernetes: unreadable kubeconfig is a DatastoreConfigError with a hint', async () => {
  await assert.rejects(createKubernetesDatastore({ kubeconfig: '/nonexistent/kubeconfig' }), (e: unknown) => e instanceof DatastoreConfigError && /KUBECONFIG/.test(e.hint ?? ''));
});

test('kubernetes: wrong credentials are a typed Unauthorized error', async (t) => {
  const srv = await startK8sTestServer();
  const dir = await mkdtemp(join(tmpdir(), 'tabby-kube-'));
  t.after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });
  const ds = await createKubernetesDatastore({ kubeconfig: await writeKubeconfig(join(dir, 'kc'), { url: srv.url, token: 'wrong' }) });
  await assert.rejects(ds.get('IPPool', 'x'), (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'Unauthorized');
});

test('kubernetes: a server that accepts but never answers gives UnavailableError and watch ERROR events, not a hang', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabby-kube-'));
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  const port = await freePort(23790, 23799);
  await new Promise<void>((r) => silent.listen(port, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const ds = await createKubernetesDatastore({ kubeconfig: await writeKubeconfig(join(dir, 'kc'), { url, token: 'x' }), requestTimeoutMs: 500 });
  const log = new EventLog();
  t.after(async () => {
    await log.stop();
    await ds.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });
  await assert.rejects(ds.get('IPPool', 'x'), (e: unknown) => e instanceof UnavailableError && e.message.includes(url));
  log.start(ds, 'IPPool');
  await log.waitForCount('ERROR', 2);
  const errs = log.events.filter((e) => e.type === 'ERROR');
  assert.ok(errs.every((e) => e.type === 'ERROR' && e.error instanceof UnavailableError));
  assert.equal(log.summary().length, 0, 'no data events from a silent server');
});
