import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDatastore } from '../../datastore/memory.js';
import { DatastoreError, UnavailableError } from '../../datastore/types.js';
import { Ipam } from '../../ipam/ipam.js';
import { kubernetesPodLister } from '../../node/ipam-gc-k8s.js';
import { IpamGc, IPAM_GC_DEFAULTS, podGcOwners } from '../../node/ipam-gc.js';
import { ensureClusterInformation } from '../../node/startup.js';
import { addNode, addPool } from '../ipam/fixtures.js';

/** A stand-in for the API server's GET /api/v1/pods. */
async function podServer(t: { after(fn: () => unknown): void }, respond: () => { status: number; body: unknown }) {
  const srv = http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/api/v1/pods') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404 }));
      return;
    }
    const r = respond();
    res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((r) => srv.close(r)));
  const dir = await mkdtemp(join(tmpdir(), 'tgc-kube-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const server = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t0k}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
  );
  return { kubeconfig, close: () => new Promise((r) => srv.close(r)) };
}

function podList(items: unknown[]) {
  return { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items };
}

test('kubernetes pods as GC owners: a deleted pod’s address goes, a live one stays; API errors are typed and release nothing', async (t) => {
  const ds = new MemoryDatastore();
  await ensureClusterInformation(ds, 'test');
  await addPool(ds, 'p4', { cidr: '10.81.0.0/16', blockSize: 26 });
  await addNode(ds, 'n1');
  const ipam = new Ipam({ datastore: ds });
  const assign = async (pod: string) =>
    (await ipam.autoAssign({ num4: 1, handleId: `k8s-pod-network.${pod}-sandbox`, hostname: 'n1', attrs: { node: 'n1', namespace: 'default', pod } })).ipv4[0]!.ip;
  const liveIp = await assign('live');
  await assign('deleted');

  let reply: { status: number; body: unknown } = { status: 200, body: podList([{ metadata: { name: 'live', namespace: 'default' }, status: { podIP: liveIp, podIPs: [{ ip: liveIp }] } }]) };
  const srv = await podServer(t, () => reply);
  const list = await kubernetesPodLister(srv.kubeconfig, 2000);
  const pods = await list();
  assert.equal(pods.length, 1);
  assert.equal(pods[0]!.metadata?.name, 'live');

  let clock = 0;
  const gc = new IpamGc({ ...IPAM_GC_DEFAULTS }, { ds, ipam, identity: 'n1', owners: podGcOwners(ds, list), now: () => clock });
  assert.equal((await gc.runPass()).candidates, 1);
  // Forbidden (RBAC) is a typed, non-retryable error; the pass is aborted.
  reply = { status: 403, body: { kind: 'Status', code: 403, reason: 'Forbidden', message: 'pods is forbidden' } };
  clock = IPAM_GC_DEFAULTS.graceMs;
  await assert.rejects(gc.runPass(), (err: unknown) => err instanceof DatastoreError && !(err instanceof UnavailableError) && /RBAC/.test(err.hint ?? ''));
  assert.equal((await ipam.ipsByHandle('k8s-pod-network.deleted-sandbox')).length, 1, 'nothing released on an API error');
  reply = { status: 500, body: { kind: 'Status', code: 500 } };
  await assert.rejects(gc.runPass(), UnavailableError);
  reply = { status: 200, body: podList([{ metadata: { name: 'live', namespace: 'default' }, status: { podIP: liveIp } }]) };
  const r = await gc.runPass();
  assert.deepEqual(r.released.map((x) => [x.handle, x.reason]), [['k8s-pod-network.deleted-sandbox', 'owner-gone']]);
  assert.equal((await ipam.ipsByHandle('k8s-pod-network.live-sandbox')).length, 1);
  await srv.close();
  await assert.rejects(list(), UnavailableError, 'API server gone');
});
