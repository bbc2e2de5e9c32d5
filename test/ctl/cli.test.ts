import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../api/meta.js';
import { MemoryDatastore } from '../../datastore/memory.js';
import { NotFoundError, UnavailableError } from '../../datastore/types.js';
import { parseLabelArg } from '../../ctl/commands/label.js';
import { ctl, poolYaml } from './harness.js';

async function withFile(content: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tabbyctl-'));
  try {
    const p = join(dir, 'm.yaml');
    await writeFile(p, content);
    await fn(p);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type PoolSpec = { cidr: string; disabled?: boolean; natOutgoing?: boolean };

test('apply -f creates, get -o wide shows it, apply again updates in place', async () => {
  const ds = new MemoryDatastore();
  await withFile(poolYaml('pool-a', '10.10.0.0/16', '  natOutgoing: true\n'), async (f) => {
    const r = await ctl(ds, ['apply', '-f', f]);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, "Successfully applied 1 'IPPool' resource(s)\n");
    assert.equal(r.code, 0);
  });
  const first = await ds.get('IPPool', 'pool-a');
  const g = await ctl(ds, ['get', 'ippool', '-o', 'wide']);
  assert.equal(g.code, 0);
  const lines = g.stdout.trimEnd().split('\n');
  assert.deepEqual(lines[0]?.split(/\s+/), ['NAME', 'CIDR', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR']);
  assert.deepEqual(lines[1]?.split(/\s+/).slice(0, 3), ['pool-a', '10.10.0.0/16', 'true']);

  await withFile(poolYaml('pool-a', '10.10.0.0/16', '  disabled: true\n'), async (f) => {
    const r = await ctl(ds, ['apply', '-f', f]);
    assert.equal(r.code, 0, r.stderr);
  });
  const second = await ds.get<Resource<string, PoolSpec>>('IPPool', 'pool-a');
  assert.equal(second.spec.disabled, true);
  assert.equal(second.metadata.uid, first.metadata.uid, 'apply keeps the identity of the existing object');
  assert.notEqual(second.metadata.resourceVersion, first.metadata.resourceVersion);
});

test('create fails for an existing resource unless --skip-exists; replace fails for a missing one', async () => {
  const ds = new MemoryDatastore();
  const r1 = await ctl(ds, ['create', '-f', '-'], poolYaml('p', '10.20.0.0/16'));
  assert.equal(r1.stdout, "Successfully created 1 'IPPool' resource(s)\n");
  const r2 = await ctl(ds, ['create', '-f', '-'], poolYaml('p', '10.20.0.0/16'));
  assert.equal(r2.code, 1);
  assert.equal(r2.stdout, '');
  assert.match(r2.stderr, /^Hit error: document 1 \(IPPool "p"\): IPPool "p" already exists\n$/);
  const r3 = await ctl(ds, ['create', '--skip-exists', '-f', '-'], poolYaml('p', '10.20.0.0/16'));
  assert.equal(r3.code, 0, r3.stderr);

  const r4 = await ctl(ds, ['replace', '-f', '-'], poolYaml('q', '10.21.0.0/16'));
  assert.equal(r4.code, 1);
  assert.match(r4.stderr, /IPPool "q" not found/);
  await assert.rejects(ds.get('IPPool', 'q'), NotFoundError);
  const r5 = await ctl(ds, ['replace', '-f', '-'], poolYaml('p', '10.20.0.0/16', '  disabled: true\n'));
  assert.equal(r5.stdout, "Successfully replaced 1 'IPPool' resource(s)\n");
  assert.equal((await ds.get<Resource<string, PoolSpec>>('IPPool', 'p')).spec.disabled, true);
});

test('a bad document is reported with its field and nothing of it is written; the others are', async () => {
  const ds = new MemoryDatastore();
  const manifest = [poolYaml('good-1', '10.30.0.0/16'), poolYaml('good-2', '10.31.0.0/16'), poolYaml('bad', '10.32.0.1/16')].join('---\n');
  const r = await ctl(ds, ['apply', '-f', '-'], manifest);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "Partial success: applied the first 2 out of 3 'IPPool' resources:\n");
  const errs = r.stderr.trimEnd().split('\n');
  assert.equal(errs.length, 1);
  assert.match(errs[0] ?? '', /^Hit error: document 3 \(IPPool "bad"\): spec\.cidr: .*10\.32\.0\.1\/16/);
  await assert.rejects(ds.get('IPPool', 'bad'), NotFoundError);
  assert.equal((await ds.list('IPPool')).items.length, 2);

  // Overlap with an existing pool is a validation error too, and writes nothing.
  const o = await ctl(ds, ['create', '-f', '-'], poolYaml('overlap', '10.30.0.0/16'));
  assert.equal(o.code, 1);
  assert.match(o.stderr, /spec\.cidr.*overlap/);
  await assert.rejects(ds.get('IPPool', 'overlap'), NotFoundError);
});

test('immutable fields cannot change through apply', async () => {
  const ds = new MemoryDatastore();
  assert.equal((await ctl(ds, ['apply', '-f', '-'], poolYaml('p', '10.40.0.0/16'))).code, 0);
  const r = await ctl(ds, ['apply', '-f', '-'], poolYaml('p', '10.41.0.0/16'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /spec\.cidr/);
  assert.equal((await ds.get<Resource<string, PoolSpec>>('IPPool', 'p')).spec.cidr, '10.40.0.0/16');
});

test('apply retries when it loses a compare-and-swap race', async () => {
  const ds = new MemoryDatastore();
  assert.equal((await ctl(ds, ['apply', '-f', '-'], poolYaml('p', '10.50.0.0/16'))).code, 0);
  ds.injectFault({ op: 'update', kind: 'IPPool', count: 2 });
  const r = await ctl(ds, ['apply', '-f', '-'], poolYaml('p', '10.50.0.0/16', '  disabled: true\n'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await ds.get<Resource<string, PoolSpec>>('IPPool', 'p')).spec.disabled, true);
  // A manifest resourceVersion is a strict precondition: no retry.
  const stale = poolYaml('p', '10.50.0.0/16', '  disabled: false\n').replace('  name: p\n', '  name: p\n  resourceVersion: "1"\n');
  const s = await ctl(ds, ['apply', '-f', '-'], stale);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /modified concurrently/);
});

test('delete by file and by kind/name; --skip-not-exists', async () => {
  const ds = new MemoryDatastore();
  await ctl(ds, ['apply', '-f', '-'], [poolYaml('a', '10.60.0.0/16'), poolYaml('b', '10.61.0.0/16')].join('---\n'));
  const d1 = await ctl(ds, ['delete', 'ippool', 'a']);
  assert.equal(d1.stdout, "Successfully deleted 1 'IPPool' resource(s)\n");
  const d2 = await ctl(ds, ['delete', 'pools', 'a']);
  assert.equal(d2.code, 1);
  assert.match(d2.stderr, /resource does not exist: IPPool\(a\)/);
  assert.equal((await ctl(ds, ['delete', 'ippool', 'a', '--skip-not-exists'])).code, 0);
  const d3 = await ctl(ds, ['delete', '-f', '-'], poolYaml('b', '10.61.0.0/16'));
  assert.equal(d3.stdout, "Successfully deleted 1 'IPPool' resource(s)\n");
  assert.equal((await ds.list('IPPool')).items.length, 0);
});

test('label sets, refuses to overwrite without --overwrite, and removes', async () => {
  const ds = new MemoryDatastore();
  await ctl(ds, ['apply', '-f', '-'], poolYaml('p', '10.70.0.0/16'));
  const l1 = await ctl(ds, ['label', 'ippool', 'p', 'zone=a']);
  assert.equal(l1.stdout, 'Successfully set label zone on ippool p\n');
  const l2 = await ctl(ds, ['label', 'ippool', 'p', 'zone=b']);
  assert.equal(l2.code, 1);
  assert.match(l2.stderr, /already set to 'a'.*--overwrite/);
  assert.equal((await ds.get('IPPool', 'p')).metadata.labels?.zone, 'a');
  assert.equal((await ctl(ds, ['label', 'ippool', 'p', 'zone=b', '--overwrite'])).code, 0);
  assert.equal((await ds.get('IPPool', 'p')).metadata.labels?.zone, 'b');
  const l3 = await ctl(ds, ['label', 'ippool', 'p', 'zone', '--remove']);
  assert.equal(l3.stdout, 'Successfully removed label zone from ippool p\n');
  assert.equal((await ds.get('IPPool', 'p')).metadata.labels?.zone, undefined);
  assert.equal((await ctl(ds, ['label', 'ippool', 'p', 'zone', '--remove'])).code, 1);
  assert.equal((await ctl(ds, ['label', 'ippool', 'nope', 'a=b'])).code, 1);
});

test('patch applies a JSON merge patch with validation', async () => {
  const ds = new MemoryDatastore();
  await ctl(ds, ['apply', '-f', '-'], poolYaml('p', '10.80.0.0/16'));
  const r = await ctl(ds, ['patch', 'ippool', 'p', '-p', '{"spec":{"disabled":true}}']);
  assert.equal(r.stdout, "Successfully patched 1 'IPPool' resource\n");
  assert.equal((await ds.get<Resource<string, PoolSpec>>('IPPool', 'p')).spec.disabled, true);
  const bad = await ctl(ds, ['patch', 'ippool', 'p', '-p', '{"spec":{"cidr":"10.81.0.0/16"}}']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /spec\.cidr/);
  const notJson = await ctl(ds, ['patch', 'ippool', 'p', '-p', '{spec']);
  assert.equal(notJson.code, 1);
  assert.match(notJson.stderr, /not valid JSON/);
});

test('get: by name, yaml/json, not found, unknown kind', async () => {
  const ds = new MemoryDatastore();
  await ctl(ds, ['apply', '-f', '-'], [poolYaml('a', '10.90.0.0/16'), poolYaml('b', '10.91.0.0/16')].join('---\n'));
  const t = await ctl(ds, ['get', 'ippools']);
  assert.deepEqual(
    t.stdout.trimEnd().split('\n').map((l) => l.split(/\s+/)),
    [
      ['NAME', 'CIDR', 'SELECTOR'],
      ['a', '10.90.0.0/16', 'all()'],
      ['b', '10.91.0.0/16', 'all()'],
    ],
  );
  const y = await ctl(ds, ['get', 'ippool', 'a', '-o', 'yaml']);
  assert.match(y.stdout, /^apiVersion: projectcalico.org\/v3\nkind: IPPool\nmetadata:\n/);
  const yl = await ctl(ds, ['get', 'ippool', '-o', 'yaml']);
  assert.match(yl.stdout, /kind: IPPoolList/);
  // What get prints can be applied back.
  assert.equal((await ctl(ds, ['apply', '-f', '-'], yl.stdout)).stdout, "Successfully applied 2 'IPPool' resource(s)\n");
  const j = await ctl(ds, ['get', 'ippool', 'b', '-o', 'json']);
  assert.equal((JSON.parse(j.stdout) as Resource).metadata.name, 'b');
  const nf = await ctl(ds, ['get', 'ippool', 'zzz']);
  assert.equal(nf.code, 1);
  assert.match(nf.stderr, /resource does not exist: IPPool\(zzz\)/);
  const uk = await ctl(ds, ['get', 'gizmo']);
  assert.equal(uk.code, 1);
  assert.match(uk.stderr, /resource type 'gizmo' is not supported/);
  const bo = await ctl(ds, ['get', 'ippool', '-o', 'xml']);
  assert.equal(bo.code, 1);
  assert.match(bo.stderr, /unrecognized output format 'xml'/);
});

test('validate needs no datastore and checks overlaps inside the manifest', async () => {
  const ok = await ctl(undefined, ['validate', '-f', '-'], poolYaml('a', '10.100.0.0/16'));
  assert.equal(ok.stdout, "Successfully validated 1 'IPPool' resource(s)\n");
  const bad = await ctl(undefined, ['validate', '-f', '-'], [poolYaml('a', '10.100.0.0/16'), poolYaml('b', '10.100.0.0/16')].join('---\n'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /document 2 \(IPPool "b"\): spec\.cidr.*overlap/);
  const missing = await ctl(undefined, ['validate']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /missing -f/);
});

test('version guard, version --client, unknown subcommands, unknown commands', async () => {
  const ds = new MemoryDatastore();
  await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'ClusterInformation', metadata: { name: 'default' }, spec: { calicoVersion: 'v9.9.0', clusterType: 'tabby,bgp' } });
  const g = await ctl(ds, ['get', 'ippool']);
  assert.equal(g.code, 1);
  assert.match(g.stderr, /Version mismatch.*v9\.9\.0.*--allow-version-mismatch/);
  assert.equal((await ctl(ds, ['get', 'ippool', '--allow-version-mismatch'])).code, 0);
  const v = await ctl(ds, ['version']);
  assert.match(v.stdout, /^Client Version: {4}v\d+\.\d+\.\d+\nCluster Version: {3}v9\.9\.0\nCluster Type: {6}tabby,bgp\n$/);
  const vc = await ctl(undefined, ['version', '--client']);
  assert.equal(vc.code, 0);
  assert.match(vc.stdout, /^Client Version:/);
  // Every command group is implemented now: an unknown subcommand of a group is a usage error.
  for (const group of ['ipam', 'node', 'bgp', 'cluster']) {
    const r = await ctl(undefined, [group, 'frobnicate']);
    assert.notEqual(r.code, 0, `${group} frobnicate must fail`);
    assert.ok(r.stderr.length > 0, `${group} frobnicate must say why`);
  }
  const u = await ctl(undefined, ['frobnicate']);
  assert.equal(u.code, 1);
});

test('an unavailable datastore stops the run after the first document', async () => {
  const ds = new MemoryDatastore();
  ds.injectFault({ op: 'get', kind: 'IPPool', count: 100, error: () => new UnavailableError('memory://test') });
  const r = await ctl(ds, ['apply', '-f', '-'], [poolYaml('a', '10.110.0.0/16'), poolYaml('b', '10.111.0.0/16')].join('---\n'));
  assert.equal(r.code, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', /^Hit error: document 1 \(IPPool "a"\): datastore at memory:\/\/test is unreachable/);
  assert.match(lines[1] ?? '', /^Hit error: document 2 \(IPPool "b"\): not attempted: datastore at memory:\/\/test is unreachable/);
});

test('namespaced kinds: default namespace, -n, and -A with a NAMESPACE column', async () => {
  const ds = new MemoryDatastore();
  const wep = (ns: string, name: string): Resource => ({
    apiVersion: 'projectcalico.org/v3',
    kind: 'WorkloadEndpoint',
    metadata: { name, namespace: ns },
    spec: { workload: name, node: 'n1', interfaceName: 'cali0', ipNetworks: ['10.0.0.1/32'] },
  });
  await ds.create(wep('default', 'a'));
  await ds.create(wep('kube-system', 'b'));
  const d = await ctl(ds, ['get', 'wep']);
  assert.deepEqual(
    d.stdout.trimEnd().split('\n').map((l) => l.split(/\s+/)),
    [
      ['WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE'],
      ['a', 'n1', '10.0.0.1/32', 'cali0'],
    ],
  );
  assert.match((await ctl(ds, ['get', 'wep', '-n', 'kube-system'])).stdout, /\nb\s/);
  const all = await ctl(ds, ['get', 'wep', '-A']);
  assert.deepEqual(
    all.stdout.trimEnd().split('\n').map((l) => l.split(/\s+/)[0]),
    ['NAMESPACE', 'default', 'kube-system'],
  );
});

test('label keys and values follow Kubernetes label syntax', async () => {
  assert.deepEqual(parseLabelArg('example.com/zone=west-1', false), { key: 'example.com/zone', value: 'west-1' });
  assert.deepEqual(parseLabelArg('empty=', false), { key: 'empty', value: '' });
  assert.throws(() => parseLabelArg('bad key=x', false), /label key 'bad key'/);
  assert.throws(() => parseLabelArg('Bad_Prefix/k=x', false), /prefix 'Bad_Prefix' must be a DNS subdomain/);
  assert.throws(() => parseLabelArg('k=-x', false), /label value '-x'/);
  assert.throws(() => parseLabelArg('novalue', false), /invalid label 'novalue'/);
  const ds = new MemoryDatastore();
  await ctl(ds, ['apply', '-f', '-'], poolYaml('p', '10.120.0.0/16'));
  const r = await ctl(ds, ['label', 'ippool', 'p', 'bad key=x']);
  assert.equal(r.code, 1);
  assert.equal((await ds.get('IPPool', 'p')).metadata.labels, undefined);
});
