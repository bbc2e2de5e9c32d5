import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import {
  DatastoreConfigError,
  MemoryDatastore,
  configFromCniNetConf,
  configFromCtlText,
  configFromEnv,
  configFromFile,
  describeConfig,
  openDatastore,
  resolveCtlConfig,
} from '../../datastore/index.js';

const isConfigError = (re: RegExp) => (e: unknown) => e instanceof DatastoreConfigError && re.test(e.message) && typeof e.hint === 'string' && e.hint.length > 0;

test('configFromEnv: Calico variables, etcdv3 default', () => {
  assert.deepEqual(configFromEnv({}), { type: 'etcdv3', etcdEndpoints: ['http://127.0.0.1:2379'] });
  assert.deepEqual(configFromEnv({ DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://10.0.0.1:2379, https://10.0.0.2:2379', KUBECONFIG: '/x' }), {
    type: 'etcdv3',
    etcdEndpoints: ['http://10.0.0.1:2379', 'https://10.0.0.2:2379'],
  });
  assert.deepEqual(configFromEnv({ DATASTORE_TYPE: 'kubernetes', KUBECONFIG: '/etc/kube.conf', ETCD_ENDPOINTS: 'http://a:1' }), {
    type: 'kubernetes',
    kubeconfig: '/etc/kube.conf',
  });
  assert.deepEqual(configFromEnv({ DATASTORE_TYPE: 'memory' }), { type: 'memory' });
  assert.deepEqual(configFromEnv({ ETCD_CA_CERT_FILE: '/ca', ETCD_CERT_FILE: '/c', ETCD_KEY_FILE: '/k' }), {
    type: 'etcdv3',
    etcdEndpoints: ['http://127.0.0.1:2379'],
    etcdCaCertFile: '/ca',
    etcdCertFile: '/c',
    etcdKeyFile: '/k',
  });
});

test('configFromEnv: bad values are DatastoreConfigErrors with a hint', () => {
  assert.throws(() => configFromEnv({ DATASTORE_TYPE: 'consul' }), isConfigError(/DATASTORE_TYPE.*consul/));
  assert.throws(() => configFromEnv({ ETCD_ENDPOINTS: '10.0.0.1:2379' }), isConfigError(/ETCD_ENDPOINTS.*10\.0\.0\.1:2379/));
  assert.throws(() => configFromEnv({ ETCD_ENDPOINTS: 'ftp://x:1' }), isConfigError(/not an etcd client URL/));
  assert.throws(() => configFromEnv({ ETCD_CERT_FILE: '/c' }), isConfigError(/certificate and key/));
  assert.throws(() => configFromEnv({ TABBY_ETCD_TRANSPORT: 'grpc-web' }), isConfigError(/TABBY_ETCD_TRANSPORT.*grpc-web/));
});

test('configFromEnv: TABBY_ETCD_TRANSPORT picks the etcd client (etcd datastores only)', () => {
  assert.equal(configFromEnv({ TABBY_ETCD_TRANSPORT: 'http' }).etcdTransport, 'http');
  assert.equal(configFromEnv({ TABBY_ETCD_TRANSPORT: ' grpc ' }).etcdTransport, 'grpc');
  assert.equal('etcdTransport' in configFromEnv({}), false, 'unset: the program decides');
  assert.deepEqual(configFromEnv({ DATASTORE_TYPE: 'kubernetes', TABBY_ETCD_TRANSPORT: 'http' }), { type: 'kubernetes' });
});

test('configFromCniNetConf: datastore_type, etcd_endpoints, kubernetes.kubeconfig; conf wins over env', () => {
  assert.deepEqual(configFromCniNetConf({ datastore_type: 'kubernetes', kubernetes: { kubeconfig: '/etc/cni/net.d/tabby-kubeconfig' } }, { KUBECONFIG: '/other' }), {
    type: 'kubernetes',
    kubeconfig: '/etc/cni/net.d/tabby-kubeconfig',
  });
  assert.deepEqual(configFromCniNetConf({ etcd_endpoints: 'http://10.1.1.1:2379' }, { ETCD_ENDPOINTS: 'http://9.9.9.9:2379' }), {
    type: 'etcdv3',
    etcdEndpoints: ['http://10.1.1.1:2379'],
  });
  assert.deepEqual(configFromCniNetConf({}, { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: '/k' }), { type: 'kubernetes', kubeconfig: '/k' });
  assert.throws(() => configFromCniNetConf({ datastore_type: 'zk' }), isConfigError(/zk/));
  assert.throws(() => configFromCniNetConf({ etcd_endpoints: ['http://a:1'] }), isConfigError(/etcd_endpoints/));
  assert.throws(() => configFromCniNetConf({ kubernetes: 'x' }), isConfigError(/kubernetes/));
});

test('configFromFile: calicoctl.cfg-shaped CalicoAPIConfig', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabby-cfg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const p = join(dir, 'tabbyctl.cfg');
  await writeFile(p, 'apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: http://127.0.0.1:23790,http://127.0.0.1:23791\n');
  assert.deepEqual(configFromFile(p), { type: 'etcdv3', etcdEndpoints: ['http://127.0.0.1:23790', 'http://127.0.0.1:23791'] });
  assert.deepEqual(configFromCtlText('apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: kubernetes\n  kubeconfig: /root/.kube/config\n'), {
    type: 'kubernetes',
    kubeconfig: '/root/.kube/config',
  });
  assert.throws(() => configFromFile(join(dir, 'missing.cfg')), isConfigError(/missing\.cfg.*ENOENT/));
  assert.throws(() => configFromCtlText('kind: Other\n'), isConfigError(/CalicoAPIConfig/));
  assert.throws(() => configFromCtlText('apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec: {datastoreType: mongo}\n'), isConfigError(/mongo/));
  assert.throws(() => configFromCtlText(': : :\n  - ]'), isConfigError(/YAML/));
  // resolveCtlConfig: explicit path must exist; default path optional; else env
  assert.deepEqual(resolveCtlConfig(p, {}), configFromFile(p));
  assert.throws(() => resolveCtlConfig(join(dir, 'nope'), {}), DatastoreConfigError);
  assert.deepEqual(resolveCtlConfig(undefined, { DATASTORE_TYPE: 'memory' }, join(dir, 'nope')), { type: 'memory' });
  assert.deepEqual(resolveCtlConfig(undefined, {}, p), configFromFile(p));
});

test('openDatastore: memory, etcdv3 and kubernetes backends by config', async () => {
  const mem = await openDatastore({ type: 'memory' });
  assert.ok(mem instanceof MemoryDatastore);
  assert.equal(mem.type, 'memory');
  const etcd = await openDatastore(configFromEnv({ ETCD_ENDPOINTS: 'http://127.0.0.1:23799' }));
  assert.equal(etcd.type, 'etcdv3');
  await etcd.close();
  await assert.rejects(openDatastore({ type: 'kubernetes', kubeconfig: '/nonexistent/kc' }), DatastoreConfigError);
  await assert.rejects(openDatastore({ type: 'zk' as 'memory' }), DatastoreConfigError);
  assert.equal(describeConfig({ type: 'etcdv3', etcdEndpoints: ['http://a:1'], etcdPassword: 'secret' }), 'etcdv3 at http://a:1');
});

test('bundles load the etcd and kubernetes clients only when such a datastore is opened', async () => {
  const out = await build({
    stdin: { contents: "import { openDatastore } from './datastore/index.js'; export { openDatastore };", resolveDir: fileURLToPath(new URL('../..', import.meta.url)), loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    write: false,
    logLevel: 'silent',
  });
  const js = out.outputFiles[0]?.text ?? '';
  assert.doesNotMatch(js, /^import[^\n]*from\s*"(etcd3|@kubernetes\/client-node)"/m, 'no static import of a backend client');
  assert.match(js, /import\("etcd3"\)/);
  assert.match(js, /import\("@kubernetes\/client-node"\)/);
});
