import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatastoreConfig } from '../../datastore/config.js';
import { MemoryDatastore } from '../../datastore/memory.js';
import type { Datastore } from '../../datastore/types.js';
import { silentLogger } from '../../lib/log.js';
import type { PodDataplane } from '../../cni/plugin/dataplane.js';
import type { FsProbe } from '../../cni/shim/decide.js';
import type { ShimRequest } from '../../cni/shim/protocol.js';
import { requestHandler } from '../../node/cni-server.js';
import { DatastorePool, poolKey } from '../../node/datastore-pool.js';
import { parseNodeConfig } from '../../node/config.js';

const etcd = (endpoints: string[], extra: Partial<DatastoreConfig> = {}): DatastoreConfig => ({ type: 'etcdv3', etcdEndpoints: endpoints, ...extra });

function countingOpener() {
  const opened: Array<{ cfg: DatastoreConfig; ds: Datastore; closed: number }> = [];
  const opener = async (cfg: DatastoreConfig): Promise<Datastore> => {
    const ds = new MemoryDatastore();
    const rec = { cfg, ds: ds as Datastore, closed: 0 };
    const close = ds.close.bind(ds);
    ds.close = async () => {
      rec.closed++;
      await close();
    };
    opened.push(rec);
    return ds;
  };
  return { opened, opener };
}

test('datastore pool: one connection per configuration, close() of a handed-out one is a no-op', async () => {
  const { opened, opener } = countingOpener();
  const pool = new DatastorePool(opener, silentLogger());
  const a = await pool.open(etcd(['http://e1:2379'], { etcdTransport: 'http' }));
  const b = await pool.open(etcd(['http://e1:2379'], { etcdTransport: 'grpc' }));
  await pool.open(etcd(['http://e2:2379']));
  assert.equal(opened.length, 2, 'transport does not make another cluster');
  await a.close();
  await b.close();
  assert.equal(opened[0]!.closed, 0);
  await a.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/24' } });
  assert.equal((await b.list('IPPool')).items.length, 1, 'both are the same connection');
  await pool.close();
  assert.deepEqual(opened.map((o) => o.closed), [1, 1]);
});

test('datastore pool: the seeded (agent) connection is reused and never closed; memory is never pooled', async () => {
  const { opened, opener } = countingOpener();
  const pool = new DatastorePool(opener, silentLogger());
  const agent = new MemoryDatastore();
  let agentClosed = 0;
  agent.close = async () => void agentClosed++;
  pool.seed(etcd(['http://e1:2379'], { etcdTransport: 'grpc' }), agent);
  const got = await pool.open(etcd(['http://e1:2379'], { etcdTransport: 'http' }));
  await got.close();
  assert.equal(opened.length, 0);
  await pool.open({ type: 'memory' });
  await pool.open({ type: 'memory' });
  assert.equal(opened.length, 2);
  await pool.close();
  assert.equal(agentClosed, 0);
});

test('datastore pool: a changed kubeconfig gets a new connection; a failed open is not cached', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-pool-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kc = join(dir, 'kubeconfig');
  writeFileSync(kc, 'a');
  const { opened, opener } = countingOpener();
  let fail = true;
  const pool = new DatastorePool(async (c) => {
    if (c.type === 'etcdv3' && fail) {
      fail = false;
      throw new Error('down');
    }
    return opener(c);
  }, silentLogger(), 0);
  await assert.rejects(pool.open(etcd(['http://x:1'])), /down/);
  await pool.open(etcd(['http://x:1']));
  assert.equal(opened.length, 1, 'the failed open was retried');
  const k = { type: 'kubernetes', kubeconfig: kc } as const;
  await pool.open(k);
  await pool.open(k);
  assert.equal(opened.length, 2);
  writeFileSync(kc, 'b');
  const { utimesSync } = await import('node:fs');
  utimesSync(kc, new Date(), new Date(Date.now() + 5000));
  await pool.open(k);
  assert.equal(opened.length, 3);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(opened[1]!.closed, 1, 'the superseded connection closes after the grace period');
  await pool.close();
  assert.equal(poolKey(etcd(['a'], { requestTimeoutMs: 1 })), poolKey(etcd(['a'])));
});

test('TABBY_CNI_SERVER: on by default, off disables, anything else names the variable', () => {
  const host = { hostname: () => 'n1' };
  assert.equal(parseNodeConfig({}, host).cniServer, true);
  assert.equal(parseNodeConfig({ TABBY_CNI_SERVER: 'off' }, host).cniServer, false);
  assert.throws(() => parseNodeConfig({ TABBY_CNI_SERVER: 'no' }, host), (e: Error & { variable?: string }) => e.variable === 'TABBY_CNI_SERVER');
});

const probe: FsProbe = { identity: () => '1:1', exists: () => true, findPlugin: () => true };

function handler(t: { after: (fn: () => void) => void }, dataplane: () => Promise<PodDataplane>, timeoutMs?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-cnisrv-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const netns = join(dir, 'netns');
  writeFileSync(netns, '');
  const h = requestHandler({ runDir: join(dir, 'run'), log: silentLogger(), datastores: new DatastorePool(async () => new MemoryDatastore(), silentLogger()), probe, hostname: 'n1', ...(timeoutMs ? { timeoutMs } : {}) }, dataplane);
  const req = (env: Record<string, string>, conf: Record<string, unknown> = {}): ShimRequest => ({
    env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: dir, ...env },
    meta: { netns: '1:1' },
    stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tabby', run_dir: join(dir, 'run'), lib_dir: join(dir, 'lib'), log_file_path: join(dir, 'cni.log'), ipam: { type: 'host-local' }, ...conf }),
  });
  return { h, req, dir };
}

const never = () => new Promise<PodDataplane>(() => undefined);

test('request handler: VERSION, spec errors as the plugin prints them, fallback for another run dir', async (t) => {
  const { h, req } = handler(t, never);
  const v = await h(req({ CNI_COMMAND: 'VERSION' }));
  assert.equal(v.kind, 'result');
  assert.match(v.kind === 'result' ? v.stdout : '', /"supportedVersions"/);
  const bad = await h(req({ CNI_IFNAME: 'eth0123456789abcdef' }));
  assert.deepEqual(bad, {
    kind: 'result',
    code: 1,
    stdout: '{"cniVersion":"1.0.0","code":4,"msg":"CNI_IFNAME \\"eth0123456789abcdef\\" is longer than 15 characters","details":"interface names are limited to 15 bytes by the kernel"}\n',
  });
  const other = await h(req({}, { run_dir: '/elsewhere' }));
  assert.equal(other.kind, 'fallback');
});

test('request handler: a request that outlives the timeout answers error 11 in the config\'s version', async (t) => {
  const { h, req } = handler(t, never, 30);
  const r = await h(req({}, { cniVersion: '0.4.0' }));
  assert.equal(r.kind, 'result');
  if (r.kind !== 'result') return;
  assert.equal(r.code, 1);
  const e = JSON.parse(r.stdout) as { cniVersion: string; code: number; msg: string };
  assert.equal(e.cniVersion, '0.4.0');
  assert.equal(e.code, 11);
  assert.match(e.msg, /timed out after 30 ms/);
});

test('the agent starts the CNI server after startup and removes its socket on stop; the socket answers VERSION', async (t) => {
  const { NodeAgent } = await import('../../node/agent.js');
  const { startCniServer } = await import('../../node/cni-server.js');
  const { encodeRequest, decodeReply } = await import('../../cni/shim/protocol.js');
  const { createConnection } = await import('node:net');
  const { existsSync, statSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'tabby-cnisrv-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: '10.0.0.2/24', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), DATASTORE_TYPE: 'memory', FELIX_HEALTHENABLED: 'false' });
  const pool = new DatastorePool(async () => new MemoryDatastore(), silentLogger());
  const agent = new NodeAgent(cfg, { ds, log: silentLogger(), detect: async () => assert.fail('static IP'), cniServer: () => startCniServer({ runDir: cfg.runDir, log: silentLogger(), datastores: pool }) });
  t.after(() => agent.stop());
  await agent.start();
  const sock = join(cfg.runDir, 'cni.sock');
  assert.equal(statSync(sock).mode & 0o777, 0o600);
  const reply = await new Promise<string>((resolve, reject) => {
    const c = createConnection(sock);
    let out = '';
    c.on('data', (b: Buffer) => (out += b.toString()));
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.end(encodeRequest({ env: { CNI_COMMAND: 'VERSION', TABBY_RUN_DIR: cfg.runDir }, meta: {}, stdin: '{"cniVersion":"1.0.0"}' }));
  });
  const r = decodeReply(reply);
  assert.equal(r.kind, 'result');
  assert.match(r.kind === 'result' ? r.stdout : '', /"supportedVersions":\["0\.3\.0"/);
  await agent.stop();
  assert.equal(existsSync(sock), false);
});
