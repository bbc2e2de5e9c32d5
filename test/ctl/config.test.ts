import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ctlDatastoreConfig } from '../../ctl/context.js';
import { DatastoreConfigError } from '../../datastore/types.js';

const cfgText = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n${spec}`;

test('tabbyctl datastore config: file, environment, and environment overriding file fields', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabbyctl-cfg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const etcdFile = join(dir, 'etcd.cfg');
  await writeFile(etcdFile, cfgText('  datastoreType: etcdv3\n  etcdEndpoints: http://10.0.0.1:2379\n'));
  const kubeFile = join(dir, 'kube.cfg');
  await writeFile(kubeFile, cfgText('  datastoreType: kubernetes\n  kubeconfig: /etc/kube.conf\n'));
  const absentDefault = join(dir, 'absent-default.cfg');

  // No file: the environment.
  assert.deepEqual(ctlDatastoreConfig(undefined, { ETCD_ENDPOINTS: 'http://127.0.0.1:23830' }, absentDefault), {
    type: 'etcdv3',
    etcdEndpoints: ['http://127.0.0.1:23830'],
  });
  // The default file when present.
  assert.deepEqual(ctlDatastoreConfig(undefined, {}, etcdFile).etcdEndpoints, ['http://10.0.0.1:2379']);
  // Set variables override the file's fields, others stay.
  assert.deepEqual(ctlDatastoreConfig(etcdFile, { ETCD_ENDPOINTS: 'http://10.0.0.2:2379' }).etcdEndpoints, ['http://10.0.0.2:2379']);
  // A KUBECONFIG left in the shell does not turn an etcd config into something else.
  assert.deepEqual(ctlDatastoreConfig(etcdFile, { KUBECONFIG: '/root/.kube/config' }), { type: 'etcdv3', etcdEndpoints: ['http://10.0.0.1:2379'] });
  assert.deepEqual(ctlDatastoreConfig(kubeFile, { KUBECONFIG: '/other' }), { type: 'kubernetes', kubeconfig: '/other' });
  assert.deepEqual(ctlDatastoreConfig(kubeFile, { DATASTORE_TYPE: 'etcdv3' }), { type: 'etcdv3', etcdEndpoints: ['http://127.0.0.1:2379'] });
  // An explicit --config must exist; bad values name the variable.
  assert.throws(() => ctlDatastoreConfig(join(dir, 'nope.cfg'), {}), DatastoreConfigError);
  assert.throws(() => ctlDatastoreConfig(undefined, { DATASTORE_TYPE: 'zookeeper' }, absentDefault), /DATASTORE_TYPE/);
});
