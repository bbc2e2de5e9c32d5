import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { startK8sDatastore } from '../k8s-server/harness.js';
import { createLogger } from '../../lib/log.js';
import { applyPeerPasswords, SecretResolver, secretAccess, secretSettings, type SecretLookup, type SecretSource } from '../../node/secrets.js';
import { MemoryDatastore } from '../../datastore/memory.js';
import { computeBgpPlan } from '../../node/bgp-config.js';
import type { BGPConfiguration, BGPPeer, Node } from '../../api/types.js';
import { DatastoreError } from '../../datastore/types.js';

const NS = 'calico-system';

function capture(): { log: ReturnType<typeof createLogger>; text: () => string } {
  let out = '';
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { log: createLogger({ name: 't', level: 'debug', destination: dest }), text: () => out };
}

test('secretSettings: NAMESPACE / TABBY_NAMESPACE (default kube-system), KUBECONFIG, refresh period', () => {
  assert.deepEqual(secretSettings({}), { namespace: 'kube-system', inCluster: false, refreshMs: 10_000 });
  assert.deepEqual(secretSettings({ NAMESPACE: 'calico-system', KUBECONFIG: '/k', TABBY_SECRET_REFRESH_SECONDS: '2' }), { namespace: 'calico-system', kubeconfig: '/k', inCluster: false, refreshMs: 2000 });
  assert.equal(secretSettings({ NAMESPACE: 'a', TABBY_NAMESPACE: 'b' }).namespace, 'b');
  assert.equal(secretSettings({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }).inCluster, true);
});

test('Kubernetes datastore readSecret: decoded data, undefined for a missing Secret (404), typed error without credentials', async (t) => {
  const k = await startK8sDatastore();
  t.after(() => k.cleanup());
  k.srv.setSecret(NS, 'bgp', { peer: 's3cret', mesh: 'm€sh' });
  assert.deepEqual(await k.ds.readSecret(NS, 'bgp'), { peer: 's3cret', mesh: 'm€sh' });
  assert.equal(await k.ds.readSecret(NS, 'nosuch'), undefined);
  assert.equal(await k.ds.readSecret('other', 'bgp'), undefined, 'Secrets are per namespace');
  assert.deepEqual(k.srv.requests.filter((r) => r.resource === 'secrets').map((r) => `${r.verb} ${r.group}/${r.resource}`), ['get /secrets', 'get /secrets', 'get /secrets']);

  const res = await fetch(`${k.srv.url}/api/v1/namespaces/${NS}/secrets/nosuch`, { headers: { authorization: `Bearer ${k.srv.token}` } });
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'secrets "nosuch" not found', reason: 'NotFound', details: { name: 'nosuch', kind: 'secrets' }, code: 404 });
  assert.equal((await fetch(`${k.srv.url}/api/v1/namespaces/${NS}/secrets/bgp`)).status, 401);
});

test('SecretResolver over the Kubernetes datastore: found, missing Secret, missing key, change, deletion', async (t) => {
  const k = await startK8sDatastore();
  t.after(() => k.cleanup());
  const cap = capture();
  let changes = 0;
  const r = new SecretResolver({ namespace: NS, source: { read: (ns, n) => k.ds.readSecret(ns, n) }, onChange: () => changes++, log: cap.log });
  t.after(() => r.stop());
  k.srv.setSecret(NS, 'bgp', { peer: 's3cret' });

  assert.deepEqual(r.lookup({ name: 'bgp', key: 'peer' }), { error: `reading Secret ${NS}/bgp` });
  await r.refresh();
  assert.equal(changes, 1);
  assert.deepEqual(r.lookup({ name: 'bgp', key: 'peer' }), { value: 's3cret' });
  assert.deepEqual(r.lookup({ name: 'bgp', key: 'other' }), { error: `Secret ${NS}/bgp has no key "other"`, missing: true });
  r.lookup({ name: 'absent', key: 'x' });
  await r.refresh();
  assert.deepEqual(r.lookup({ name: 'absent', key: 'x' }), { error: `Secret ${NS}/absent not found`, missing: true });

  await r.refresh();
  const before = changes;
  assert.equal(before, 2, 'bgp found, absent missing');
  await r.refresh();
  assert.equal(changes, before, 'an unchanged Secret is no change');

  k.srv.setSecret(NS, 'bgp', { peer: 'n3w' });
  await r.refresh();
  assert.equal(changes, before + 1);
  assert.deepEqual(r.lookup({ name: 'bgp', key: 'peer' }), { value: 'n3w' });

  k.srv.deleteSecret(NS, 'bgp');
  await r.refresh();
  assert.equal(changes, before + 2);
  assert.deepEqual(r.lookup({ name: 'bgp', key: 'peer' }), { error: `Secret ${NS}/bgp not found`, missing: true });
  assert.ok(!cap.text().includes('s3cret') && !cap.text().includes('n3w'), 'passwords never reach the log');
  assert.match(cap.text(), /BGP password Secret changed/);
});

test('SecretResolver: a read error keeps the last good value; without a source every lookup says why', async () => {
  let fail = false;
  const src: SecretSource = {
    read: async () => {
      if (fail) throw new DatastoreError('Forbidden', 'kubernetes get secret: HTTP 403');
      return { k: 'v' };
    },
  };
  let changes = 0;
  const r = new SecretResolver({ namespace: 'ns', source: src, onChange: () => changes++ });
  r.lookup({ name: 's', key: 'k' });
  await r.refresh();
  fail = true;
  await r.refresh();
  assert.deepEqual(r.lookup({ name: 's', key: 'k' }), { value: 'v' });
  assert.equal(changes, 1);
  r.lookup({ name: 'other', key: 'k' });
  await r.refresh();
  assert.deepEqual(r.lookup({ name: 'other', key: 'k' }), { error: 'cannot read Secret ns/other: kubernetes get secret: HTTP 403' });

  const none = new SecretResolver({ namespace: 'ns', unavailableReason: 'no Kubernetes API on etcd', onChange: () => assert.fail('no source, no change') });
  assert.deepEqual(none.lookup({ name: 's', key: 'k' }), { error: 'no Kubernetes API on etcd' });
});

test('applyPeerPasswords: mesh and BGPPeer passwords from their refs; unresolved peers held back with the reason', () => {
  const node = (name: string, ip: string): Node => ({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name }, spec: { bgp: { ipv4Address: `${ip}/24` } } });
  const peer = (name: string, spec: BGPPeer['spec']): BGPPeer => ({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name }, spec });
  const config: BGPConfiguration = { apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { nodeMeshPassword: { secretKeyRef: { name: 'mesh', key: 'pw' } } } };
  const peers = [
    peer('tor', { peerIP: '10.0.0.254', asNumber: 65100, password: { secretKeyRef: { name: 'bgp', key: 'tor' } } }),
    peer('tor2', { peerIP: '10.0.0.253', asNumber: 65100, password: { secretKeyRef: { name: 'bgp', key: 'nokey' } } }),
    peer('plain', { peerIP: '10.0.0.252', asNumber: 65100 }),
  ];
  const plan = computeBgpPlan({ nodeName: 'a', nodes: [node('a', '10.0.0.1'), node('b', '10.0.0.2')], peers, config, affinities: [], blocks: [], pools: [] });
  const values: Record<string, Record<string, string>> = { mesh: { pw: 'meshpw' }, bgp: { tor: 'torpw' } };
  const failed = applyPeerPasswords(plan, config, peers, (ref) => {
    const v = values[ref.name]?.[ref.key];
    return v === undefined ? { error: `Secret ns/${ref.name} has no key "${ref.key}"` } : { value: v };
  });
  assert.deepEqual(plan.peers.map((p) => [p.address, p.type, p.password]), [
    ['10.0.0.2', 'node-to-node mesh', 'meshpw'],
    ['10.0.0.252', 'global', undefined],
    ['10.0.0.254', 'global', 'torpw'],
  ]);
  assert.deepEqual(failed.map((f) => [f.peer.address, f.reason]), [['10.0.0.253', 'password unavailable: Secret ns/bgp has no key "nokey"']]);
  assert.equal(failed[0]?.peer.password, undefined);
});

test('secretAccess: KDD reads through the datastore; etcd-style stores need a kubeconfig, else every lookup says why', async (t) => {
  const k = await startK8sDatastore();
  t.after(() => k.cleanup());
  k.srv.setSecret(NS, 'bgp', { peer: 'pw' });

  const kdd = await secretAccess({ NAMESPACE: NS }, k.ds);
  assert.equal(kdd.namespace, NS);
  assert.deepEqual(await kdd.source?.read(NS, 'bgp'), { peer: 'pw' });

  const mem = new MemoryDatastore();
  const bare = await secretAccess({}, mem);
  assert.equal(bare.source, undefined);
  assert.equal(bare.namespace, 'kube-system');
  assert.equal(bare.unavailableReason, 'BGP passwords come from Kubernetes Secrets: with the memory datastore set KUBECONFIG (or run in a pod) so tabby-node can read them');
  const r = new SecretResolver({ ...bare, onChange: () => undefined });
  assert.deepEqual(r.lookup({ name: 'bgp', key: 'peer' }), { error: bare.unavailableReason });

  const withKc = await secretAccess({ NAMESPACE: NS, KUBECONFIG: k.kubeconfig }, mem);
  assert.deepEqual(await withKc.source?.read(NS, 'bgp'), { peer: 'pw' });
  assert.equal(await withKc.source?.read(NS, 'nosuch'), undefined);

  const broken = await secretAccess({ KUBECONFIG: '/nonexistent/kubeconfig' }, mem);
  assert.equal(broken.source, undefined);
  assert.match(broken.unavailableReason ?? '', /^cannot read BGP password Secrets: cannot load kubeconfig \/nonexistent\/kubeconfig/);
});

test('applyPeerPasswords: secretKeyRef.optional — a missing Secret or key runs the peer without a password; read trouble still holds it back', () => {
  const node = (name: string, ip: string): Node => ({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name }, spec: { bgp: { ipv4Address: `${ip}/24` } } });
  const peer = (name: string, ip: string, secretKeyRef: { name: string; key: string; optional?: boolean }): BGPPeer => ({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name }, spec: { peerIP: ip, asNumber: 65100, password: { secretKeyRef } } });
  const config: BGPConfiguration = { apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { nodeMeshPassword: { secretKeyRef: { name: 'gone', key: 'pw', optional: true } } } };
  const peers = [
    peer('opt-nosecret', '10.0.0.250', { name: 'gone', key: 'x', optional: true }),
    peer('opt-nokey', '10.0.0.251', { name: 'bgp', key: 'nokey', optional: true }),
    peer('opt-found', '10.0.0.252', { name: 'bgp', key: 'tor', optional: true }),
    peer('opt-error', '10.0.0.253', { name: 'denied', key: 'x', optional: true }),
    peer('opt-pending', '10.0.0.254', { name: 'pending', key: 'x', optional: true }),
    peer('required', '10.0.0.249', { name: 'gone', key: 'x', optional: false }),
    peer('required-absent', '10.0.0.248', { name: 'gone', key: 'x' }),
  ];
  const plan = computeBgpPlan({ nodeName: 'a', nodes: [node('a', '10.0.0.1'), node('b', '10.0.0.2')], peers, config, affinities: [], blocks: [], pools: [] });
  const lookup = (ref: { name: string; key: string }): SecretLookup => {
    if (ref.name === 'gone') return { error: `Secret ns/gone not found`, missing: true };
    if (ref.name === 'denied') return { error: 'cannot read Secret ns/denied: HTTP 403' };
    if (ref.name === 'pending') return { error: 'reading Secret ns/pending' };
    return ref.key === 'tor' ? { value: 'torpw' } : { error: `Secret ns/bgp has no key "${ref.key}"`, missing: true };
  };
  const optional: string[] = [];
  const failed = applyPeerPasswords(plan, config, peers, lookup, (m) => optional.push(`${m.peer.address}: ${m.reason}`));
  assert.deepEqual(plan.peers.map((p) => [p.address, p.password]).sort(), [
    ['10.0.0.2', undefined],
    ['10.0.0.250', undefined],
    ['10.0.0.251', undefined],
    ['10.0.0.252', 'torpw'],
  ]);
  assert.deepEqual(optional.sort(), [
    '10.0.0.250: optional password: Secret ns/gone not found; running without TCP-MD5',
    '10.0.0.251: optional password: Secret ns/bgp has no key "nokey"; running without TCP-MD5',
    '10.0.0.2: optional password: Secret ns/gone not found; running without TCP-MD5',
  ]);
  assert.deepEqual(failed.map((f) => [f.peer.address, f.reason]).sort(), [
    ['10.0.0.248', 'password unavailable: Secret ns/gone not found'],
    ['10.0.0.249', 'password unavailable: Secret ns/gone not found'],
    ['10.0.0.253', 'password unavailable: cannot read Secret ns/denied: HTTP 403'],
    ['10.0.0.254', 'password unavailable: reading Secret ns/pending'],
  ]);
});
