import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startK8sDatastore } from '../k8s-server/harness.js';
import { ServiceWatcher } from '../../node/services.js';
import { kubernetesCore } from '../../node/secrets.js';
import type { ServiceSource } from '../../node/secrets.js';

test('Kubernetes datastore listServices: Services and ready Endpoints addresses from the core API', async (t) => {
  const k = await startK8sDatastore();
  t.after(() => k.cleanup());
  k.srv.setCoreObject('services', {
    metadata: { namespace: 'web', name: 'front' },
    spec: { type: 'LoadBalancer', clusterIP: '10.96.0.10', externalIPs: ['192.0.2.5'], externalTrafficPolicy: 'Local' },
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.5' }, { hostname: 'lb.example' }] } },
  });
  k.srv.setCoreObject('services', { metadata: { namespace: 'web', name: 'plain' }, spec: { clusterIP: '10.96.0.11' } });
  k.srv.setCoreObject('endpoints', {
    metadata: { namespace: 'web', name: 'front' },
    subsets: [{ addresses: [{ ip: '10.244.1.5', nodeName: 'node-a' }, { ip: '10.244.2.5' }], notReadyAddresses: [{ ip: '10.244.3.5', nodeName: 'node-a' }] }],
  });
  const got = await k.ds.listServices();
  assert.deepEqual(got.services, [
    { namespace: 'web', name: 'front', type: 'LoadBalancer', clusterIP: '10.96.0.10', externalIPs: ['192.0.2.5'], externalTrafficPolicy: 'Local', loadBalancerIngressIPs: ['203.0.113.5'] },
    { namespace: 'web', name: 'plain', clusterIP: '10.96.0.11' },
  ]);
  assert.deepEqual(got.endpoints, [{ namespace: 'web', name: 'front', addresses: [{ ip: '10.244.1.5', nodeName: 'node-a' }, { ip: '10.244.2.5' }] }]);
  const used = k.srv.requests.filter((r) => r.group === '').map((r) => `${r.verb} ${r.resource}`).sort();
  assert.deepEqual(used, ['list endpoints', 'list services']);

  // kubernetesCore on KDD: one reader for Secrets and Services.
  const core = await kubernetesCore({}, k.ds);
  assert.equal((await core.reader?.list())?.services.length, 2);
});

test('ServiceWatcher: lists only while active, reports changes, keeps the last view through errors', async () => {
  let fail = false;
  let view = { services: [{ namespace: 'a', name: 's', clusterIP: '10.96.0.1' }], endpoints: [] as Array<{ namespace: string; name: string; addresses: [] }> };
  let lists = 0;
  const source: ServiceSource = {
    list: async () => {
      lists++;
      if (fail) throw new Error('HTTP 503');
      return structuredClone(view);
    },
  };
  let changes = 0;
  const w = new ServiceWatcher({ source, refreshMs: 3_600_000, onChange: () => changes++ });
  await w.refresh();
  assert.equal(changes, 0, 'inactive: the list is not taken');
  w.setActive(true);
  await w.refresh();
  assert.equal(changes, 1);
  assert.deepEqual(w.services.map((s) => s.name), ['s']);
  await w.refresh();
  assert.equal(changes, 1, 'same view, no change');
  fail = true;
  await w.refresh();
  assert.equal(changes, 1);
  assert.deepEqual(w.services.map((s) => s.name), ['s'], 'kept through the error');
  fail = false;
  view = { services: [], endpoints: [] };
  await w.refresh();
  assert.equal(changes, 2);
  assert.deepEqual(w.services, []);
  w.setActive(false);
  assert.ok(lists >= 4);
  w.stop();
});
