/**
 * install-cni against API servers on loopback: the TokenRequest it sends for tabby-cni-plugin, and the
 * kubeconfig it writes, loaded by @kubernetes/client-node and used against the test API server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../lib/log.js';
import { writeCniKubeconfig } from '../../node/install-cni.js';
import { requestCniToken } from '../../node/install-cni-main.js';
import { startK8sTestServer } from '../k8s-server/server.js';

test('requestCniToken posts a TokenRequest for tabby-cni-plugin with the pod token; refusals fall back', async (t) => {
  const seen: Array<{ method?: string; url?: string; auth?: string; body: string }> = [];
  let reply: { status: number; body: string } = { status: 201, body: JSON.stringify({ status: { token: 'cni-token', expirationTimestamp: '2030-01-01T00:00:00Z' } }) };
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const server = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const cluster = { server, caPem: undefined, skipTlsVerify: true, token: 'pod-token' };

  assert.equal(await requestCniToken(cluster, 'kube-system', silentLogger()), 'cni-token');
  assert.equal(seen[0]!.method, 'POST');
  assert.equal(seen[0]!.url, '/api/v1/namespaces/kube-system/serviceaccounts/tabby-cni-plugin/token');
  assert.equal(seen[0]!.auth, 'Bearer pod-token');
  assert.equal(JSON.parse(seen[0]!.body).kind, 'TokenRequest');

  reply = { status: 403, body: '{"kind":"Status","code":403}' };
  assert.equal(await requestCniToken(cluster, 'kube-system', silentLogger()), undefined);
  reply = { status: 201, body: 'not json' };
  assert.equal(await requestCniToken(cluster, 'kube-system', silentLogger()), undefined);
  // Nothing listening: undefined, not a throw.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  assert.equal(await requestCniToken({ ...cluster, server: `http://127.0.0.1:${deadPort}` }, 'kube-system', silentLogger()), undefined);
});

test('the CNI kubeconfig works with @kubernetes/client-node against an API server', async (t) => {
  const srv = await startK8sTestServer();
  t.after(() => srv.close());
  const dir = mkdtempSync(join(tmpdir(), 'tabby-install-cni-k8s-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { KubeConfig, CustomObjectsApi } = await import('@kubernetes/client-node');
  const list = async (token: string): Promise<unknown> => {
    const path = writeCniKubeconfig({ hostRoot: dir, cniNetDir: '/etc/cni/net.d' }, { server: srv.url, caPem: undefined, skipTlsVerify: true, token });
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'crd.projectcalico.org', version: 'v1', plural: 'ippools' });
  };
  const res = (await list(srv.token!)) as { items: unknown[] };
  assert.deepEqual(res.items, []);
  await assert.rejects(list('wrong-token'), /401|Unauthorized/);
});
