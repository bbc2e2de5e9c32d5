/**
 * The allocator on the Kubernetes datastore (CRDs on the API-faithful test server): simulated
 * nodes allocating and releasing in parallel, each with its own API client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKubernetesDatastore } from '../../datastore/kubernetes.js';
import { Ipam } from '../../ipam/ipam.js';
import { checkIpam, loadSnapshot, showRows } from '../../ipam/report.js';
import { startK8sDatastore } from '../k8s-server/harness.js';
import { addPool } from './fixtures.js';

test('KDD: 3 nodes × 12 parallel allocations, unique and affine; all released → check clean, 0 in use', async (t) => {
  const k = await startK8sDatastore({ port: 23819 });
  t.after(() => k.cleanup());
  await addPool(k.ds, 'v4', { cidr: '10.60.0.0/22' });
  const nodes = await Promise.all(
    ['kdd-a', 'kdd-b', 'kdd-c'].map(async (name) => {
      const ds = await createKubernetesDatastore({ kubeconfig: k.kubeconfig });
      t.after(() => ds.close());
      return { name, ipam: new Ipam({ datastore: ds }) };
    }),
  );
  const got = await Promise.all(
    nodes.flatMap((n) =>
      Array.from({ length: 12 }, async (_, i) => {
        const r = await n.ipam.autoAssign({ num4: 1, handleId: `k8s-pod-network.${n.name}-${i}`, hostname: n.name, attrs: { node: n.name } });
        return { node: n.name, ip: r.ipv4[0]!.ip, block: r.ipv4[0]!.block, handle: `k8s-pod-network.${n.name}-${i}` };
      }),
    ),
  );
  assert.equal(new Set(got.map((g) => g.ip)).size, got.length, 'no address twice');
  const snap = await loadSnapshot(k.ds);
  const aff = new Map(snap.blocks.map((b) => [b.spec.cidr, b.spec.affinity]));
  for (const g of got) assert.equal(aff.get(g.block), `host:${g.node}`);
  assert.equal(checkIpam(snap, { handles: new Set(got.map((g) => g.handle)), nodes: new Set() }).summary.problems, 0);
  await Promise.all(got.map((g, i) => (i % 2 ? nodes.find((n) => n.name === g.node)!.ipam.releaseByHandle(g.handle, g.node) : nodes[0]!.ipam.releaseIps([g.ip]))));
  const after = await loadSnapshot(k.ds);
  const report = checkIpam(after, { handles: new Set(), nodes: new Set() });
  assert.equal(report.summary.problems, 0, JSON.stringify(report));
  for (const r of showRows(after)) assert.equal(r.inUse, 0);
  assert.equal(after.handles.length, 0);
});
