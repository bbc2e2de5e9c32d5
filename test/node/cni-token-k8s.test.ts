/**
 * The CNI token refresher against the API-faithful test server (test/k8s-server): the server's
 * TokenRequest API itself, then rotation of the kubeconfig (atomic, 0600, usable by client-node),
 * fallback to the mounted token on 403/404, transient errors, a failed write, the env entry point,
 * and that no token reaches the log. The clock is fake; the server's expiry times are real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_AGENT_API_CALLS } from '../../datastore/kubernetes-api.js';
import { createLogger } from '../../lib/log.js';
import type { Logger } from '../../lib/log.js';
import { DEFAULT_POLICY, refreshDueAt } from '../../node/cni-token.js';
import type { CniTokenPolicy } from '../../node/cni-token.js';
import { agentKubeConfig, createCniTokenRefresher, startCniTokenRefresher } from '../../node/cni-token-k8s.js';
import { KUBECONFIG_NAME, tokenOfKubeconfig } from '../../node/install-cni.js';
import { DEFAULT_TOKEN_AUDIENCE, startK8sTestServer, writeKubeconfig } from '../k8s-server/server.js';
import type { K8sTestServer, K8sTestServerOptions } from '../k8s-server/server.js';

const TOKEN_PATH = '/api/v1/namespaces/kube-system/serviceaccounts/tabby-cni-plugin/token';

function capture(): { log: Logger; text: () => string } {
  const raw: string[] = [];
  return { log: createLogger({ name: 'cni-token-k8s-test', level: 'debug', destination: { write: (s: string) => void raw.push(s) } }), text: () => raw.join('') };
}

async function server(t: { after: (fn: () => unknown) => void }, opts: K8sTestServerOptions = {}): Promise<{ srv: K8sTestServer; dir: string; kubeconfig: string }> {
  const srv = await startK8sTestServer(opts);
  const dir = mkdtempSync(join(tmpdir(), 'tabby-cni-token-'));
  t.after(async () => {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const kubeconfig = await writeKubeconfig(join(dir, 'agent-kubeconfig'), srv);
  return { srv, dir, kubeconfig };
}

async function post(srv: K8sTestServer, path: string, body: unknown, token: string | null = srv.token): Promise<{ status: number; json: Record<string, any> }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(srv.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const tr = (spec: Record<string, unknown> = {}): object => ({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec });

test('test server: TokenRequest answers as kube-apiserver does', async (t) => {
  const { srv } = await server(t, { maxTokenExpirationSeconds: 48 * 3600 });
  const ok = await post(srv, TOKEN_PATH, tr({ expirationSeconds: 86400 }));
  assert.equal(ok.status, 201);
  assert.equal(ok.json.kind, 'TokenRequest');
  assert.equal(ok.json.apiVersion, 'authentication.k8s.io/v1');
  assert.deepEqual(ok.json.metadata, { name: 'tabby-cni-plugin', namespace: 'kube-system', creationTimestamp: null });
  assert.deepEqual(ok.json.spec.audiences, [DEFAULT_TOKEN_AUDIENCE]);
  assert.equal(ok.json.spec.expirationSeconds, 86400);
  assert.match(ok.json.status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const token = ok.json.status.token as string;
  assert.equal(token.split('.').length, 3);
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; exp: number };
  assert.equal(claims.sub, 'system:serviceaccount:kube-system:tabby-cni-plugin');
  assert.equal(new Date(claims.exp * 1000).toISOString().replace('.000Z', 'Z'), ok.json.status.expirationTimestamp);
  assert.deepEqual(srv.requests.at(-1), { verb: 'create', group: '', resource: 'serviceaccounts/token', name: 'tabby-cni-plugin' });

  // The issued token authenticates; a made-up one does not.
  const list = async (tok: string): Promise<number> => (await fetch(`${srv.url}/apis/crd.projectcalico.org/v1/ippools`, { headers: { authorization: `Bearer ${tok}` } })).status;
  assert.equal(await list(token), 200);
  assert.equal(await list(`${token}x`), 401);

  // Defaults, the server's cap, validation, unknown accounts, wrong kinds, no auth, other methods.
  assert.equal((await post(srv, TOKEN_PATH, tr())).json.spec.expirationSeconds, 3600);
  assert.equal((await post(srv, TOKEN_PATH, tr({ expirationSeconds: 7 * 86400 }))).json.spec.expirationSeconds, 48 * 3600);
  assert.deepEqual((await post(srv, TOKEN_PATH, tr({ audiences: ['vault'] }))).json.spec.audiences, ['vault']);
  const short = await post(srv, TOKEN_PATH, tr({ expirationSeconds: 599 }));
  assert.equal(short.status, 422);
  assert.equal(short.json.reason, 'Invalid');
  assert.match(short.json.message, /spec\.expirationSeconds.*less than 10 minutes/);
  const missing = await post(srv, '/api/v1/namespaces/kube-system/serviceaccounts/nobody/token', tr());
  assert.equal(missing.status, 404);
  assert.deepEqual([missing.json.kind, missing.json.reason, missing.json.details], ['Status', 'NotFound', { name: 'nobody', kind: 'serviceaccounts' }]);
  assert.equal((await post(srv, '/api/v1/namespaces/other/serviceaccounts/tabby-cni-plugin/token', tr())).status, 404);
  assert.equal((await post(srv, TOKEN_PATH, { apiVersion: 'v1', kind: 'Pod' })).status, 400);
  assert.equal((await post(srv, TOKEN_PATH, tr(), null)).status, 401);
  assert.equal((await fetch(srv.url + TOKEN_PATH, { headers: { authorization: `Bearer ${srv.token}` } })).status, 405);

  srv.forbidTokenRequests();
  const forbidden = await post(srv, TOKEN_PATH, tr());
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.json.reason, 'Forbidden');
  assert.match(forbidden.json.message, /cannot create resource "serviceaccounts\/token"/);
  srv.forbidTokenRequests(false);
  srv.failTokenRequests(503);
  assert.equal((await post(srv, TOKEN_PATH, tr())).status, 503);
  srv.failTokenRequests(undefined);
  assert.equal((await post(srv, TOKEN_PATH, tr())).status, 201);
});

interface Rig {
  srv: K8sTestServer;
  file: string;
  mountedFile: string;
  clock: { now: number };
  logs: ReturnType<typeof capture>;
  refresher: Awaited<ReturnType<typeof createCniTokenRefresher>>;
}

async function rig(t: Parameters<typeof server>[0], o: { server?: K8sTestServerOptions; namespace?: string; policy?: Partial<CniTokenPolicy> } = {}): Promise<Rig> {
  const { srv, dir, kubeconfig } = await server(t, o.server);
  const mountedFile = join(dir, 'sa-token');
  writeFileSync(mountedFile, 'mounted-pod-token-0001\n');
  const clock = { now: Date.now() };
  const logs = capture();
  const refresher = await createCniTokenRefresher({
    kc: await agentKubeConfig(kubeconfig),
    ...(o.namespace ? { namespace: o.namespace } : {}),
    cluster: { server: srv.url, caPem: undefined, skipTlsVerify: true },
    target: { hostRoot: join(dir, 'host'), cniNetDir: '/etc/cni/net.d' },
    mountedTokenFile: mountedFile,
    policy: { ...DEFAULT_POLICY, ...o.policy },
    log: logs.log,
    now: () => clock.now,
  });
  return { srv, file: join(dir, 'host/etc/cni/net.d', KUBECONFIG_NAME), mountedFile, clock, logs, refresher };
}

const fileToken = (file: string): string | undefined => tokenOfKubeconfig(readFileSync(file, 'utf8'));

/** Every token the rig's server issued or the mounted file held must be absent from the log. */
function assertNoTokenLogged(r: Rig, extra: string[] = []): void {
  const text = r.logs.text();
  assert.ok(text.length > 0, 'the scenario logged something');
  for (const tok of [...r.srv.issuedTokens.map((i) => i.token), ...extra]) assert.equal(text.includes(tok), false, `a token (${tok.slice(0, 8)}…) is in the log`);
}

test('refresher against the API server: the token rotates, the kubeconfig is replaced atomically with mode 0600 and works', async (t) => {
  const r = await rig(t);
  await r.refresher.tick();
  assert.equal(r.srv.issuedTokens.length, 1);
  const first = r.srv.issuedTokens[0]!;
  assert.equal(first.serviceAccount, 'kube-system/tabby-cni-plugin');
  assert.equal(fileToken(r.file), first.token);
  assert.equal(statSync(r.file).mode & 0o777, 0o600);
  // The refresh point is the server's expiry (not the one asked for) minus a third of the lifetime.
  assert.equal(r.refresher.status().nextRequestAtMs, refreshDueAt(r.clock.now, Date.parse(first.expirationTimestamp)));

  // The kubeconfig is usable by client-node: the minted token authenticates.
  const { KubeConfig, CustomObjectsApi } = await import('@kubernetes/client-node');
  const list = async (): Promise<unknown> => {
    const kc = new KubeConfig();
    kc.loadFromFile(r.file);
    return kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'crd.projectcalico.org', version: 'v1', plural: 'ippools' });
  };
  assert.deepEqual(((await list()) as { items: unknown[] }).items, []);

  for (let i = 0; i < 3; i++) {
    // A reader holding the old file open keeps seeing the whole old kubeconfig: the new one is a
    // new file renamed over it, never the old one rewritten in place.
    const before = readFileSync(r.file, 'utf8');
    const fd = openSync(r.file, 'r');
    try {
      r.clock.now = r.refresher.status().nextRequestAtMs;
      await r.refresher.tick();
      assert.equal(readFileSync(fd, 'utf8'), before);
      assert.notEqual(fstatSync(fd).ino, statSync(r.file).ino);
    } finally {
      closeSync(fd);
    }
    assert.equal(fileToken(r.file), r.srv.issuedTokens.at(-1)!.token);
    assert.equal(statSync(r.file).mode & 0o777, 0o600);
  }
  assert.equal(new Set(r.srv.issuedTokens.map((i) => i.token)).size, 4, 'every refresh got a new token');
  // No temp file left behind.
  assert.deepEqual(readdirSync(join(r.file, '..')), [KUBECONFIG_NAME]);
  assert.deepEqual(((await list()) as { items: unknown[] }).items, []);
  // Every call the refresher made is declared for RBAC (and so allowed by the tabby-node role).
  const declared = new Set(NODE_AGENT_API_CALLS.map((c) => `${c.verb} ${c.group}/${c.resource} ${c.resourceName}`));
  const made = r.srv.requests.filter((q) => q.resource !== 'ippools'); // the test's own list calls
  assert.equal(made.length, 4);
  for (const q of made) assert.ok(declared.has(`${q.verb} ${q.group}/${q.resource} ${q.name}`), `undeclared call ${JSON.stringify(q)}`);
  assertNoTokenLogged(r);
});

test('refresher against the API server: a failed write leaves the old kubeconfig whole, the next attempt succeeds', async (t) => {
  const r = await rig(t);
  await r.refresher.tick();
  const before = readFileSync(r.file, 'utf8');
  // The temp file cannot be created (a directory is in its place): the write fails before the rename.
  const blocker = `${r.file}.tabby-tmp-${process.pid}`;
  mkdirSync(blocker);
  r.clock.now = r.refresher.status().nextRequestAtMs;
  await r.refresher.tick();
  assert.equal(readFileSync(r.file, 'utf8'), before, 'old kubeconfig untouched');
  assert.equal(r.refresher.status().failures, 1);
  rmSync(blocker, { recursive: true });
  r.clock.now = r.refresher.status().nextRequestAtMs;
  await r.refresher.tick();
  assert.equal(fileToken(r.file), r.srv.issuedTokens.at(-1)!.token);
  assert.equal(r.refresher.status().failures, 0);
  assertNoTokenLogged(r);
});

test('refresher against the API server: 403 Forbidden falls back to the mounted token and recovers when allowed again', async (t) => {
  const r = await rig(t, { policy: { checkIntervalMs: 10_000 } });
  r.srv.forbidTokenRequests();
  await r.refresher.tick();
  assert.equal(r.refresher.status().source, 'mounted');
  assert.equal(fileToken(r.file), 'mounted-pod-token-0001');
  assert.equal(statSync(r.file).mode & 0o777, 0o600);
  const warn = r.logs
    .text()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: number; msg: string; status?: number })
    .filter((l) => l.level === 40);
  assert.equal(warn.length, 1);
  assert.equal(warn[0]!.status, 403);
  assert.match(warn[0]!.msg, /refused \(HTTP 403\).*mounted token/);

  // The kubelet rotates the pod's token: the kubeconfig follows within a check interval.
  writeFileSync(r.mountedFile, 'mounted-pod-token-0002\n');
  r.clock.now += 10_000;
  await r.refresher.tick();
  assert.equal(fileToken(r.file), 'mounted-pod-token-0002');

  r.srv.forbidTokenRequests(false);
  r.clock.now = r.refresher.status().nextRequestAtMs;
  await r.refresher.tick();
  assert.equal(r.refresher.status().source, 'token-request');
  assert.equal(fileToken(r.file), r.srv.issuedTokens.at(-1)!.token);
  assertNoTokenLogged(r, ['mounted-pod-token-0001', 'mounted-pod-token-0002']);
});

test('refresher against the API server: 404 (no such ServiceAccount) falls back; a 500 keeps the valid token', async (t) => {
  const missing = await rig(t, { namespace: 'elsewhere' });
  await missing.refresher.tick();
  assert.equal(missing.refresher.status().source, 'mounted');
  assert.equal(fileToken(missing.file), 'mounted-pod-token-0001');
  assert.match(missing.logs.text(), /refused \(HTTP 404\)/);
  assertNoTokenLogged(missing, ['mounted-pod-token-0001']);

  const flaky = await rig(t);
  await flaky.refresher.tick();
  const ino = statSync(flaky.file).ino;
  flaky.srv.failTokenRequests(500);
  flaky.clock.now = flaky.refresher.status().nextRequestAtMs;
  await flaky.refresher.tick();
  assert.equal(flaky.refresher.status().source, 'token-request');
  assert.equal(flaky.refresher.status().failures, 1);
  assert.equal(statSync(flaky.file).ino, ino, 'file not rewritten');
  assert.equal(fileToken(flaky.file), flaky.srv.issuedTokens[0]!.token);
  assert.match(flaky.logs.text(), /HTTP 500/);
  assertNoTokenLogged(flaky);
});

test('startCniTokenRefresher: off without CALICO_MANAGE_CNI; on, it writes the kubeconfig from the environment', async (t) => {
  const { srv, dir, kubeconfig } = await server(t);
  const logs = capture();
  assert.equal(await startCniTokenRefresher({ KUBECONFIG: kubeconfig }, logs.log), undefined);
  const env = { KUBECONFIG: kubeconfig, CALICO_MANAGE_CNI: 'true', TABBY_HOST_ROOT: join(dir, 'host'), CNI_NET_DIR: '/net.d', TABBY_CNI_TOKEN_EXPIRATION: '1h' };
  const r = await startCniTokenRefresher(env, logs.log);
  assert.ok(r);
  t.after(() => r.stop());
  const file = join(dir, 'host/net.d', KUBECONFIG_NAME);
  // The loop's first step runs at once; wait for its result (no timing assertion, just the outcome).
  for (let i = 0; i < 500 && r.status().refreshes === 0; i++) await new Promise((res) => setTimeout(res, 10));
  await r.stop();
  assert.equal(r.status().refreshes, 1);
  const issued = srv.issuedTokens[0]!;
  assert.equal(fileToken(file), issued.token);
  assert.equal(Date.parse(issued.expirationTimestamp) - r.status().expiresAtMs!, 0);
  const kc = readFileSync(file, 'utf8');
  assert.match(kc, new RegExp(`server: ${srv.url.replace(/[.]/g, '\\.')}`), 'out of a pod the agent kubeconfig\'s server is used');
  assert.equal(logs.text().includes(issued.token), false);
  // A bad setting is an error, not silently ignored.
  await assert.rejects(startCniTokenRefresher({ ...env, TABBY_CNI_TOKEN_EXPIRATION: '1m' }, logs.log), /TABBY_CNI_TOKEN_EXPIRATION/);
});
