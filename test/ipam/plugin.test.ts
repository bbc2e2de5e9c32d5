import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDatastore } from '../../datastore/memory.js';
import { UnavailableError, type Datastore } from '../../datastore/types.js';
import { silentLogger } from '../../lib/log.js';
import { ipamHandlers, toCniError } from '../../cni/ipam/plugin.js';
import { parseCniArgs, readStdin } from '../../cni/protocol/env.js';
import { runCni } from '../../cni/protocol/run.js';
import { resultForVersion } from '../../cni/protocol/version.js';
import type { IPAMBlock, IPAMHandle } from '../../api/types.js';
import { addPool } from './fixtures.js';

const runDir = mkdtempSync(join(tmpdir(), 'tabby-ipam-plugin-'));
test.after(() => rmSync(runDir, { recursive: true, force: true }));

/** A datastore whose close() is a no-op so the test can inspect it afterwards. */
function keepOpen(ds: Datastore): Datastore {
  return new Proxy(ds, { get: (t, p) => (p === 'close' ? async () => {} : Reflect.get(t, p)) });
}

async function invoke(ds: Datastore | (() => Promise<Datastore>), env: Record<string, string>, conf: unknown) {
  let out = '';
  const handlers = ipamHandlers({
    openDatastore: typeof ds === 'function' ? ds : async () => keepOpen(ds),
    logger: () => silentLogger(),
    env: {},
  });
  const code = await runCni(handlers, {
    env: { CNI_PATH: '/opt/cni/bin', CNI_IFNAME: 'eth0', CNI_NETNS: '/var/run/netns/x', ...env },
    stdin: async () => (typeof conf === 'string' ? conf : JSON.stringify(conf)),
    stdout: (s) => (out += s),
    mapError: toCniError,
  });
  return { code, json: (out ? JSON.parse(out) : {}) as Record<string, unknown> };
}

const conf = (extra: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) => ({
  cniVersion: '1.0.0',
  name: 'k8s-pod-network',
  type: 'tabby-ipam',
  nodename: 'node-1',
  datastore_type: 'etcdv3',
  etcd_endpoints: 'http://127.0.0.1:1',
  ipam: { type: 'tabby-ipam', run_dir: runDir, ...ipam },
  ...extra,
});

async function store() {
  const ds = new MemoryDatastore();
  await addPool(ds, 'v4', { cidr: '10.244.0.0/24' });
  await addPool(ds, 'v6', { cidr: 'fd00:244::/120' });
  return ds;
}

test('ADD returns /32 and /128 ips; repeated ADD returns the same; DEL is idempotent', async () => {
  const ds = await store();
  const add = await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_ARGS: 'K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p' }, conf({}, { assign_ipv6: 'true' }));
  assert.equal(add.code, 0, JSON.stringify(add.json));
  const ips = add.json.ips as Array<{ address: string }>;
  assert.equal(ips.length, 2);
  assert.match(ips[0]!.address, /^10\.244\.0\.\d+\/32$/);
  assert.match(ips[1]!.address, /^fd00:244::[0-9a-f]*\/128$/);
  const again = await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1' }, conf({}, { assign_ipv6: 'true' }));
  assert.deepEqual(again.json.ips, ips);
  const [h] = (await ds.list<IPAMHandle>('IPAMHandle')).items;
  assert.equal(h!.spec.handleID, 'k8s-pod-network.c1');
  const [b] = (await ds.list<IPAMBlock>('IPAMBlock')).items;
  assert.deepEqual({ ...b!.spec.attributes[0]!.secondary, timestamp: 'x' }, { node: 'node-1', namespace: 'ns', pod: 'p', containerID: 'c1', timestamp: 'x' });
  const chk = await invoke(ds, { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'c1' }, conf({ prevResult: add.json }));
  assert.equal(chk.code, 0);
  for (let i = 0; i < 2; i++) {
    const del = await invoke(ds, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1' }, conf());
    assert.equal(del.code, 0);
  }
  assert.equal((await ds.list('IPAMHandle')).items.length, 0);
  const chk2 = await invoke(ds, { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'c1' }, conf({ prevResult: add.json }));
  assert.equal(chk2.json.code, 109);
});

test('legacy versions get ip "version" fields; VERSION lists 0.3.0–1.1.0', async () => {
  const ds = await store();
  const add = await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c2' }, conf({ cniVersion: '0.3.1' }));
  assert.equal((add.json.ips as Array<{ version: string }>)[0]!.version, '4');
  assert.equal(add.json.cniVersion, '0.3.1');
  const v = await invoke(ds, { CNI_COMMAND: 'VERSION' }, '');
  assert.deepEqual(v.json.supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  assert.deepEqual(resultForVersion({ ips: [{ address: 'fd00::1/128' }] }, '0.4.0').ips, [{ version: '6', address: 'fd00::1/128' }]);
});

test('spec error codes: 4 env, 6 decode, 7 config, 1 version, 11 unreachable; nothing written', async () => {
  const ds = await store();
  const before = (ds as MemoryDatastore).currentRevision();
  assert.equal((await invoke(ds, { CNI_COMMAND: 'ADD' }, conf())).json.code, 4);
  assert.equal((await invoke(ds, { CNI_COMMAND: 'BOGUS' }, conf())).json.code, 4);
  assert.equal((await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c' }, '{nope')).json.code, 6);
  assert.equal((await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c' }, conf({ datastore_type: 'zookeeper' }))).json.code, 7);
  assert.equal((await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c' }, conf({}, { assign_ipv4: 'maybe' }))).json.code, 7);
  assert.equal((await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c' }, conf({}, { assign_ipv4: 'false' }))).json.code, 7);
  assert.equal((await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_ARGS: 'IP=10.0.0.999' }, conf())).json.code, 7);
  assert.equal((await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c' }, conf({ cniVersion: '9.9.9' }))).json.code, 1);
  assert.equal((await invoke(ds, { CNI_COMMAND: 'GC' }, conf({ cniVersion: '1.0.0' }))).json.code, 1);
  assert.equal((ds as MemoryDatastore).currentRevision(), before, 'bad input wrote nothing');
  const down = await invoke(async () => {
    throw new UnavailableError('http://127.0.0.1:1');
  }, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c' }, conf());
  assert.equal(down.json.code, 11);
  assert.match(String(down.json.msg), /unreachable/);
  // Our own codes: exhausted pool selection → 101 with a readable message.
  const empty = new MemoryDatastore();
  const r = await invoke(empty, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c' }, conf());
  assert.equal(r.json.code, 101);
  assert.ok(String(r.json.msg).length > 10);
});

test('specific IPs via CNI_ARGS IP= and runtimeConfig.ips; pools from ipam.ipv4_pools', async () => {
  const ds = await store();
  await addPool(ds, 'other', { cidr: '10.50.0.0/24' });
  const a = await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 's1', CNI_ARGS: 'IP=10.244.0.77' }, conf());
  assert.deepEqual(a.json.ips, [{ address: '10.244.0.77/32' }]);
  const b = await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 's2' }, conf({ runtimeConfig: { ips: ['10.244.0.78/24'] } }));
  assert.deepEqual(b.json.ips, [{ address: '10.244.0.78/32' }]);
  const dup = await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 's3', CNI_ARGS: 'IP=10.244.0.77' }, conf());
  assert.equal(dup.json.code, 106);
  const p = await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 's4' }, conf({}, { ipv4_pools: ['10.50.0.0/24'] }));
  assert.match((p.json.ips as Array<{ address: string }>)[0]!.address, /^10\.50\.0\./);
});

test('GC releases this node\'s handles not in valid-attachments; STATUS reports pools', async () => {
  const ds = await store();
  for (const id of ['keep', 'drop1', 'drop2']) await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id }, conf());
  await invoke(ds, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'other-node' }, conf({ nodename: 'node-2' }));
  const gc = await invoke(ds, { CNI_COMMAND: 'GC' }, conf({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] }));
  assert.equal(gc.code, 0, JSON.stringify(gc.json));
  const left = (await ds.list<IPAMHandle>('IPAMHandle')).items.map((h) => h.spec.handleID).sort();
  assert.deepEqual(left, ['k8s-pod-network.keep', 'k8s-pod-network.other-node']);
  assert.equal((await invoke(ds, { CNI_COMMAND: 'STATUS' }, conf({ cniVersion: '1.1.0' }))).code, 0);
  assert.equal((await invoke(new MemoryDatastore(), { CNI_COMMAND: 'STATUS' }, conf({ cniVersion: '1.1.0' }))).json.code, 50);
});

test('protocol helpers: CNI_ARGS parsing and stdin reading', async () => {
  assert.deepEqual(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=a'), { IgnoreUnknown: '1', K8S_POD_NAME: 'a' });
  assert.throws(() => parseCniArgs('novalue'));
  assert.equal(await readStdin(Readable.from([Buffer.from('{"a":'), Buffer.from('1}')])), '{"a":1}');
});
