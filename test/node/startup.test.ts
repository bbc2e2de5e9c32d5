import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDatastore } from '../../datastore/memory.js';
import { UnavailableError } from '../../datastore/types.js';
import { silentLogger } from '../../lib/log.js';
import { ensureClusterInformation, podMtu, registerNode, runStartup, STARTUP_ROUNDS, StartupError, waitForDatastore } from '../../node/startup.js';
import { toPeerConfig } from '../../node/agent.js';
import { parseNodeConfig } from '../../node/config.js';
import { Ipam } from '../../ipam/ipam.js';
import type { ClusterInformation, IPPool } from '../../api/types.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('waitForDatastore: bounded exponential back-off, then a typed error naming the cause', async () => {
  const ds = new MemoryDatastore();
  let calls = 0;
  const flaky = Object.assign(Object.create(ds) as MemoryDatastore, {
    list: async () => {
      calls++;
      if (calls < 4) throw new UnavailableError('http://127.0.0.1:1');
      return { items: [], revision: '1' };
    },
  });
  const sleeps: number[] = [];
  await waitForDatastore(flaky, silentLogger(), { sleep: async (ms) => void sleeps.push(ms), initialDelayMs: 100, maxDelayMs: 300 });
  assert.deepEqual(sleeps, [100, 200, 300]);
  const dead = Object.assign(Object.create(ds) as MemoryDatastore, { list: async () => { throw new UnavailableError('http://127.0.0.1:1'); } });
  await assert.rejects(waitForDatastore(dead, silentLogger(), { attempts: 3, sleep: async () => undefined }), (err: unknown) => {
    assert.ok(err instanceof StartupError);
    assert.equal(err.code, 'DatastoreNotReady');
    assert.match(err.message, /after 3 attempts: datastore at http:\/\/127\.0\.0\.1:1 is unreachable/);
    return true;
  });
});

test('registerNode is idempotent and IP=none clears the address', async () => {
  const ds = new MemoryDatastore();
  const a = await registerNode(ds, { nodeName: 'n1', ipv4Cidr: '10.0.0.5/24' });
  const b = await registerNode(ds, { nodeName: 'n1', ipv4Cidr: '10.0.0.5/24' });
  assert.equal(a.metadata.resourceVersion, b.metadata.resourceVersion);
  assert.deepEqual(b.spec?.addresses, [{ address: '10.0.0.5', type: 'CalicoNodeIP' }]);
  const c = await registerNode(ds, { nodeName: 'n1' });
  assert.deepEqual(c.spec?.bgp, {});
  assert.deepEqual(c.spec?.addresses, []);
});

test('ClusterInformation: created once, refuses a datastore marked not ready', async () => {
  const ds = new MemoryDatastore();
  const ci = await ensureClusterInformation(ds, '0.1.0');
  assert.equal(ci.spec?.datastoreReady, true);
  assert.equal((await ensureClusterInformation(ds, '0.1.0')).spec?.clusterGUID, ci.spec?.clusterGUID);
  await ds.update<ClusterInformation>({ ...ci, spec: { ...ci.spec, datastoreReady: false } });
  await assert.rejects(ensureClusterInformation(ds, '0.1.0'), /datastoreReady=false/);
});

test('pod MTU from the pools’ encapsulation and FELIX overrides', () => {
  const felix = parseNodeConfig({}, { hostname: () => 'h' }).felix;
  const pool = (spec: Partial<IPPool['spec']>): IPPool => ({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/16', ...spec } });
  assert.equal(podMtu(1500, [pool({})], felix), 1500);
  assert.equal(podMtu(1500, [pool({ vxlanMode: 'Always' })], felix), 1450);
  assert.equal(podMtu(1500, [pool({ ipipMode: 'CrossSubnet' })], felix), 1480);
  assert.equal(podMtu(1500, [pool({ vxlanMode: 'Always' })], { ...felix, vxlanMTU: 1400 }), 1400);
  assert.equal(podMtu(1500, [pool({ vxlanMode: 'Always', disabled: true })], felix), 1500);
});

test('toPeerConfig maps the plan onto the speaker’s PeerConfig', () => {
  assert.deepEqual(
    toPeerConfig({ name: 'Global_10_0_0_9', type: 'global', address: '10.0.0.9', port: 1179, asNumber: 65100, passive: true, password: 'x', ttlSecurity: 1, sourceAddress: '10.0.0.2', gracefulRestartTime: 120, nextHopMode: 'Keep', routeReflectorClient: true, filters: ['f'] }),
    { address: '10.0.0.9', port: 1179, asNumber: 65100, description: 'global', passive: true, password: 'x', ttlSecurity: 1, sourceAddress: '10.0.0.2', routeReflectorClient: true, gracefulRestart: { restartTime: 120 }, nextHopMode: 'keep', filters: ['f'] },
  );
});

test('runStartup: the datastore dropping out between the steps is waited for and the steps redone, a bounded number of times', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-startup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = parseNodeConfig({ NODENAME: 'n1', DATASTORE_TYPE: 'memory', IP: '10.0.0.5/24', CALICO_IPV4POOL_CIDR: '10.244.0.0/16', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib') });
  const ds = new MemoryDatastore();
  // The Node registers, then the ClusterInformation read times out twice (an overloaded etcd).
  let outages = 2;
  const flaky = Object.assign(Object.create(ds) as MemoryDatastore, {
    get: async (kind: string, name: string) => {
      if (kind === 'ClusterInformation' && outages > 0) {
        outages--;
        throw new UnavailableError('http://127.0.0.1:1');
      }
      return ds.get(kind as 'Node', name);
    },
  });
  const warnings: string[] = [];
  const log = Object.assign(silentLogger(), { warn: (_o: unknown, msg?: string) => void warnings.push(msg ?? '') });
  const res = await runStartup(cfg, { ds: flaky, log, detect: async () => assert.fail('static IP'), hostMtu: async () => 1500, wait: { sleep: async () => undefined } });
  assert.equal(res.node.spec?.bgp?.ipv4Address, '10.0.0.5/24');
  assert.equal(outages, 0);
  assert.equal(warnings.filter((w) => /datastore unreachable during startup/.test(w)).length, 2);
  assert.equal((await ds.list<ClusterInformation>('ClusterInformation')).items.length, 1);
  assert.equal(await readFile(join(dir, 'lib', 'mtu'), 'utf8'), '1500\n');
  // A datastore that keeps dropping out: the typed error after STARTUP_ROUNDS rounds, not a hang.
  outages = Infinity;
  await assert.rejects(
    runStartup(cfg, { ds: flaky, log: silentLogger(), detect: async () => assert.fail('static IP'), hostMtu: async () => 1500, wait: { sleep: async () => undefined } }),
    (err: unknown) => err instanceof UnavailableError,
  );
  assert.ok(STARTUP_ROUNDS >= 2);
});

/** A MemoryDatastore that counts list/get calls per kind (`hook` may act before a create). */
function counting(ds: MemoryDatastore, hook?: { beforeCreate?: (kind: string) => Promise<void> }): { ds: MemoryDatastore; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const n = (k: string): void => void calls.set(k, (calls.get(k) ?? 0) + 1);
  const wrapped = Object.assign(Object.create(ds) as MemoryDatastore, {
    list: (kind: string, opts?: object) => (n(`list ${kind}`), ds.list(kind as 'IPPool', opts)),
    get: (kind: string, name: string) => (n(`get ${kind}`), ds.get(kind as 'Node', name)),
    create: async (obj: IPPool) => {
      await hook?.beforeCreate?.(obj.kind);
      return ds.create(obj);
    },
  });
  return { ds: wrapped, calls };
}

test('runStartup reads the IP pools once and its own Node once (default pool, MTU and tunnel address share them)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-startup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = parseNodeConfig({ NODENAME: 'n1', DATASTORE_TYPE: 'memory', IP: '10.0.0.5/24', CALICO_IPV4POOL_CIDR: '10.244.0.0/16', CALICO_IPV4POOL_VXLAN: 'Always', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib') });
  const mem = new MemoryDatastore();
  const { ds, calls } = counting(mem);
  const res = await runStartup(cfg, { ds, log: silentLogger(), ipam: new Ipam({ datastore: mem }), detect: async () => assert.fail('static IP'), hostMtu: async () => 1500, wait: { sleep: async () => undefined } });
  assert.equal(res.pool?.metadata.name, 'default-ipv4-ippool', 'the default pool was created');
  assert.ok(res.node.spec?.ipv4VXLANTunnelAddr?.startsWith('10.244.'), 'the VXLAN tunnel address came from the pool created in the same start');
  assert.equal(res.mtu, 1450, 'the MTU saw the VXLAN pool');
  assert.equal(calls.get('list IPPool'), 1, [...calls].join(', '));
  assert.equal(calls.get('get Node'), 1, [...calls].join(', '));
});

test('runStartup: another node creating the default pool between our list and our create → its pool is read and used', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-startup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = parseNodeConfig({ NODENAME: 'n1', DATASTORE_TYPE: 'memory', IP: '10.0.0.5/24', CALICO_IPV4POOL_CIDR: '10.244.0.0/16', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib') });
  const mem = new MemoryDatastore();
  let raced = false;
  const other: IPPool = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'default-ipv4-ippool' }, spec: { cidr: '10.244.0.0/16', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Always', nodeSelector: 'all()' } };
  const { ds, calls } = counting(mem, {
    beforeCreate: async (kind) => {
      if (kind !== 'IPPool' || raced) return;
      raced = true;
      await mem.create(other); // the other node wins: our create gets AlreadyExists
    },
  });
  const res = await runStartup(cfg, { ds, log: silentLogger(), ipam: new Ipam({ datastore: mem }), detect: async () => assert.fail('static IP'), hostMtu: async () => 1500, wait: { sleep: async () => undefined } });
  assert.ok(raced);
  assert.equal(res.pool, undefined, 'we did not create it');
  assert.equal(res.mtu, 1450, "the MTU saw the other node's VXLAN pool");
  assert.ok(res.node.spec?.ipv4VXLANTunnelAddr?.startsWith('10.244.'), 'and the tunnel address came from it');
  assert.equal(calls.get('list IPPool'), 2, 'the pools were read again after the lost race');
});
