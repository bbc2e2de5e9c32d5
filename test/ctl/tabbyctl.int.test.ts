/**
 * The built tabbyctl executable against a real etcd (Debian etcd-server): the done-when
 * (`apply -f` a Calico IPPool manifest, then `get ippool -o wide`), plus the other resource commands
 * end to end through the process boundary (exit codes, stdout/stderr, stdin, config file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdMissing, freePort, startEtcd } from '../datastore/etcd-harness.js';
import { startK8sDatastore } from '../k8s-server/harness.js';
import type { EtcdHarness } from '../datastore/etcd-harness.js';
import { poolYaml } from './harness.js';

const root = new URL('../..', import.meta.url).pathname;
const bin = join(root, 'bin/tabbyctl');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string>, stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
    delete childEnv.NODE_EXTRA_CA_CERTS;
    const p = spawn(process.execPath, [bin, ...args], { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

const calicoPool = `# A Calico IPPool manifest as users write it
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-ipv4-ippool
spec:
  cidr: 192.168.0.0/16
  ipipMode: Always
  natOutgoing: true
`;

test('tabbyctl against a real etcd', async (t) => {
  const missing = etcdMissing();
  if (missing) {
    t.skip(missing);
    return;
  }
  const build = spawnSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, encoding: 'utf8' });
  assert.equal(build.status, 0, `build failed: ${build.stderr}`);

  const dir = await mkdtemp(join(tmpdir(), 'tabbyctl-int-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const etcd: EtcdHarness = await startEtcd({ clientPorts: [23830, 23839], peerPorts: [23840, 23849] });
  t.after(() => etcd.stop());
  const cfgFor = (endpoint: string) =>
    `apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: ${endpoint}\n`;
  const cfgFile = join(dir, 'tabbyctl.cfg');
  await writeFile(cfgFile, cfgFor(etcd.endpoint));
  // Nothing listens there: etcd takes the lowest free port of the range.
  const wrong = join(dir, 'wrong.cfg');
  await writeFile(wrong, cfgFor('http://127.0.0.1:23839'));
  // Most runs use a config file and an environment without datastore variables.
  const env = { DATASTORE_TYPE: '', ETCD_ENDPOINTS: '', KUBECONFIG: '' };
  const noCfg = ['--config', cfgFile];
  const poolFile = join(dir, 'pool.yaml');
  await writeFile(poolFile, calicoPool);

  await t.test('apply -f a Calico IPPool, then get ippool -o wide shows it', async () => {
    const a = await run(['apply', '-f', poolFile, ...noCfg], env);
    assert.equal(a.stderr, '');
    assert.equal(a.stdout, "Successfully applied 1 'IPPool' resource(s)\n");
    assert.equal(a.code, 0);
    const g = await run(['get', 'ippool', '-o', 'wide', ...noCfg], env);
    assert.equal(g.code, 0, g.stderr);
    const lines = g.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.deepEqual(lines[0]?.split(/\s+/), ['NAME', 'CIDR', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR']);
    assert.deepEqual(lines[1]?.split(/\s+/), ['default-ipv4-ippool', '192.168.0.0/16', 'true', 'Always', 'Never', 'false', 'false', 'all()']);
  });

  await t.test('environment alone, and environment variables overriding the config file', async () => {
    const envOnly = await run(['get', 'ippool', '-o', 'wide'], { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: etcd.endpoint, KUBECONFIG: '' });
    const overridden = await run(['get', 'ippool', '-o', 'wide', '--config', wrong], { ...env, ETCD_ENDPOINTS: etcd.endpoint });
    for (const g of [envOnly, overridden]) {
      assert.equal(g.code, 0, g.stderr);
      assert.match(g.stdout, /\ndefault-ipv4-ippool\s+192\.168\.0\.0\/16\s+true\s+Always/);
    }
    const missing = await run(['get', 'ippool', '--config', join(dir, 'absent.cfg')], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*absent\.cfg/);
  });

  await t.test('create of a duplicate fails and changes nothing', async () => {
    const before = await run(['get', 'ippool', 'default-ipv4-ippool', '-o', 'json', ...noCfg], env);
    const c = await run(['create', '-f', poolFile, ...noCfg], env);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /^Hit error: document 1 \(IPPool "default-ipv4-ippool"\): IPPool "default-ipv4-ippool" already exists/);
    const after = await run(['get', 'ippool', 'default-ipv4-ippool', '-o', 'json', ...noCfg], env);
    assert.equal(after.stdout, before.stdout);
  });

  await t.test('an invalid document names the field and writes nothing; -f - reads stdin', async () => {
    const manifest = [poolYaml('ok-pool', '10.1.0.0/16'), poolYaml('bad-pool', '10.2.0.1/16')].join('---\n');
    const r = await run(['apply', '-f', '-', ...noCfg], env, manifest);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "Partial success: applied the first 1 out of 2 'IPPool' resources:\n");
    assert.match(r.stderr, /^Hit error: document 2 \(IPPool "bad-pool"\): spec\.cidr: .*10\.2\.0\.1\/16.*\n$/);
    const g = await run(['get', 'ippool', ...noCfg], env);
    assert.deepEqual(
      g.stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/)[0]),
      ['default-ipv4-ippool', 'ok-pool'],
    );
  });

  await t.test('label, patch, delete', async () => {
    const l = await run(['label', 'ippool', 'ok-pool', 'zone=west', ...noCfg], env);
    assert.equal(l.stdout, 'Successfully set label zone on ippool ok-pool\n');
    const p = await run(['patch', 'ippool', 'ok-pool', '-p', '{"spec":{"disabled":true}}', ...noCfg], env);
    assert.equal(p.stdout, "Successfully patched 1 'IPPool' resource\n");
    const y = await run(['get', 'ippool', 'ok-pool', '-o', 'yaml', ...noCfg], env);
    assert.match(y.stdout, /labels:\n\s+zone: west/);
    assert.match(y.stdout, /disabled: true/);
    const d = await run(['delete', 'ippool', 'ok-pool', ...noCfg], env);
    assert.equal(d.stdout, "Successfully deleted 1 'IPPool' resource(s)\n");
    const again = await run(['delete', 'ippool', 'ok-pool', ...noCfg], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /resource does not exist: IPPool\(ok-pool\)/);
    const df = await run(['delete', '-f', poolFile, ...noCfg], env);
    assert.equal(df.stdout, "Successfully deleted 1 'IPPool' resource(s)\n");
    const g = await run(['get', 'ippool', ...noCfg], env);
    assert.equal(g.stdout, 'NAME   CIDR   SELECTOR\n');
  });

  await t.test('unreachable datastore is a one-line error naming the endpoint', async () => {
    const r = await run(['get', 'ippool', '--config', wrong], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /127\.0\.0\.1:23839/);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1);
  });
});

test('tabbyctl against the Kubernetes test server (DATASTORE_TYPE=kubernetes, KUBECONFIG)', async (t) => {
  const build = spawnSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, encoding: 'utf8' });
  assert.equal(build.status, 0, `build failed: ${build.stderr}`);
  const k = await startK8sDatastore({ port: await freePort(23835, 23838) });
  t.after(() => k.cleanup());
  const env = { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: k.kubeconfig, ETCD_ENDPOINTS: '' };
  const a = await run(['apply', '-f', '-'], env, calicoPool);
  assert.equal(a.stdout, "Successfully applied 1 'IPPool' resource(s)\n", a.stderr);
  const g = await run(['get', 'ippool', '-o', 'wide'], env);
  assert.deepEqual(g.stdout.trimEnd().split('\n')[1]?.split(/\s+/), ['default-ipv4-ippool', '192.168.0.0/16', 'true', 'Always', 'Never', 'false', 'false', 'all()']);
  const stored = await k.ds.get('IPPool', 'default-ipv4-ippool');
  assert.equal((stored.spec as { cidr: string }).cidr, '192.168.0.0/16');
  const d = await run(['delete', 'ippool', 'default-ipv4-ippool'], env);
  assert.equal(d.stdout, "Successfully deleted 1 'IPPool' resource(s)\n", d.stderr);
});
