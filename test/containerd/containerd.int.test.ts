/**
 * containerd as the real caller: `ctr run --cni` two busybox containers through the tabby conflist;
 * they ping each other over the Calico-style /32 + 169.254.1.1 plumbing; when they exit ctr calls
 * DEL and every veth, route and IPAM allocation is gone.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EtcdDatastore } from '../../datastore/etcd.js';
import { loadSnapshot, showRows } from '../../ipam/report.js';
import type { WorkloadEndpoint } from '../../cni/plugin/wep.js';
import { buildOnce, runPlugin } from '../cni/helpers.js';
import { etcdMissing, startEtcd } from '../datastore/etcd-harness.js';
import { buildBusyboxImage, containerIp, containerdMissing, installCni, startContainerd } from './harness.js';

const skip = containerdMissing() ?? (existsSync('/usr/lib/cni/host-local') ? undefined : 'needs /usr/lib/cni/host-local (containernetworking-plugins)');

function caliLinks(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter((n) => n.startsWith('cali'));
}

async function waitFor(what: string, fn: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('ctr run --cni: two containers get tabby addresses, ping each other, exit releases everything', { skip, timeout: 120_000 }, async (t) => {
  buildOnce();
  const work = await mkdtemp(join(tmpdir(), 'tcn-ctr-'));
  const cleanups: Array<() => Promise<unknown>> = [() => rm(work, { recursive: true, force: true })];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => console.error('cleanup:', err));
  });
  const before = caliLinks();
  const cd = await startContainerd();
  cleanups.push(() => cd.stop());
  const image = await buildBusyboxImage(work);
  await cd.ctr(['images', 'import', '--no-unpack=false', image]).catch(() => cd.ctr(['images', 'import', image]));
  const ipamDir = join(work, 'ipam');
  const cni = await installCni({
    cniVersion: '1.0.0',
    name: 'tcn-ctr-net',
    plugins: [
      {
        type: 'tabby',
        log_file_path: join(work, 'cni.log'),
        lib_dir: join(work, 'lib'),
        mtu: 1450,
        ipam: { type: 'host-local', subnet: '10.97.0.0/24', dataDir: ipamDir },
      },
      { type: 'portmap', snat: true, capabilities: { portMappings: true } },
    ],
  });
  cleanups.splice(1, 0, () => cni.restore()); // after containerd stopped: its DEL calls need the plugins
  const a = cd.runDetached('tcn-a', ['sleep', '60']);
  let aOut = '';
  a.stderr?.on('data', (b: Buffer) => (aOut += b.toString()));
  await cd.waitRunning('tcn-a').catch((err: Error) => {
    throw new Error(`${err.message}\nctr: ${aOut}`);
  });
  const ipA = await containerIp(cd, 'tcn-a');
  assert.match(ipA, /^10\.97\.0\.\d+$/);
  assert.equal(caliLinks().filter((l) => !before.includes(l)).length, 1, 'one host veth for tcn-a');
  // Container b pings a through the gateway and exits; ctr then runs DEL for b.
  const pingOut = await cd.ctr(['run', '--rm', '--cni', 'docker.io/tabby/busybox:test', 'tcn-b', 'ping', '-c', '2', '-W', '3', ipA], { timeoutMs: 30_000 });
  assert.match(pingOut, /2 packets received/);
  // a got the MTU from the config and the default route via the proxy-ARP gateway.
  const back = await cd.ctr(['tasks', 'exec', '--exec-id', 'mtu', 'tcn-a', 'ip', 'link', 'show', 'eth0']);
  assert.match(back, /mtu 1450/);
  const routes = await cd.ctr(['tasks', 'exec', '--exec-id', 'routes', 'tcn-a', 'ip', 'route']);
  assert.match(routes, /default via 169\.254\.1\.1 dev eth0/);
  await waitFor('b released', () => readdirSync(join(ipamDir, 'tcn-ctr-net')).filter((f) => /^\d/.test(f)).length === 1);
  // Stop a: ctr run --rm calls DEL, the veth, route and allocation go.
  await cd.ctr(['tasks', 'kill', '-s', 'KILL', 'tcn-a']);
  await new Promise<void>((r) => (a.exitCode !== null ? r() : a.once('exit', () => r())));
  await waitFor('veths removed', () => caliLinks().filter((l) => !before.includes(l)).length === 0);
  assert.deepEqual(readdirSync(join(ipamDir, 'tcn-ctr-net')).filter((f) => /^\d/.test(f)), []);
  assert.doesNotMatch(execFileSync('ip', ['route'], { encoding: 'utf8' }), /10\.97\.0\./);
});

test('ctr run --cni end to end with tabby-ipam on etcd: pool addresses, WorkloadEndpoints, ipam back to 0', { skip: skip ?? etcdMissing(), timeout: 180_000 }, async (t) => {
  buildOnce();
  const work = await mkdtemp(join(tmpdir(), 'tcn-ctr-'));
  const cleanups: Array<() => Promise<unknown>> = [() => rm(work, { recursive: true, force: true })];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => console.error('cleanup:', err));
  });
  const etcd = await startEtcd({ clientPorts: [23880, 23889], peerPorts: [23890, 23899] });
  cleanups.push(() => etcd.stop());
  const admin = new EtcdDatastore({ endpoints: [etcd.endpoint] });
  cleanups.push(() => admin.close());
  await admin.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'tcn-pool' }, spec: { cidr: '10.96.0.0/24', blockSize: 28, nodeSelector: 'all()' } });
  const before = caliLinks();
  const cd = await startContainerd();
  cleanups.push(() => cd.stop());
  await cd.ctr(['images', 'import', await buildBusyboxImage(work)]);
  const cni = await installCni({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    plugins: [
      {
        type: 'tabby',
        log_file_path: join(work, 'cni.log'),
        lib_dir: join(work, 'lib'),
        nodename: 'tcn-node',
        datastore_type: 'etcdv3',
        etcd_endpoints: etcd.endpoint,
        ipam: { type: 'tabby-ipam', run_dir: join(work, 'run') },
      },
    ],
  });
  cleanups.splice(1, 0, () => cni.restore()); // after containerd stopped: its DEL calls need the plugins
  // STATUS (1.1.0): not available until the node is registered, then OK (tabby-ipam answers too).
  const statusConf = { ...JSON.parse(readFileSync(cni.confPath, 'utf8')).plugins[0], cniVersion: '1.1.0', name: 'k8s-pod-network' } as Record<string, unknown>;
  const status = () => runPlugin({ plugin: 'tabby', command: 'STATUS', conf: statusConf, containerId: '', netns: '', cniPath: '/opt/cni/bin' });
  const s1 = await status();
  assert.equal(s1.out?.code, 50, s1.raw);
  assert.match(String(s1.out?.msg), /node tcn-node is not registered/);
  await admin.create({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'tcn-node' }, spec: {} });
  const s2 = await status();
  assert.equal(s2.code, 0, s2.raw);
  const a = cd.runDetached('tcn-e2e-a', ['sleep', '60']);
  await cd.waitRunning('tcn-e2e-a');
  const ipA = await containerIp(cd, 'tcn-e2e-a');
  assert.match(ipA, /^10\.96\.0\.\d+$/, 'address from the IPPool');
  const weps = await admin.list<WorkloadEndpoint>('WorkloadEndpoint');
  assert.equal(weps.items.length, 1);
  assert.equal(weps.items[0]?.spec.node, 'tcn-node');
  assert.deepEqual(weps.items[0]?.spec.ipNetworks, [`${ipA}/32`]);
  assert.match(weps.items[0]?.spec.containerID ?? '', /tcn-e2e-a$/, 'ctr passes <namespace>-<id> as the container id');
  const pingOut = await cd.ctr(['run', '--rm', '--cni', 'docker.io/tabby/busybox:test', 'tcn-e2e-b', 'ping', '-c', '2', '-W', '3', ipA], { timeoutMs: 30_000 });
  assert.match(pingOut, /2 packets received/);
  await cd.ctr(['tasks', 'kill', '-s', 'KILL', 'tcn-e2e-a']);
  await new Promise<void>((r) => (a.exitCode !== null ? r() : a.once('exit', () => r())));
  await waitFor('veths removed', () => caliLinks().filter((l) => !before.includes(l)).length === 0);
  const snap = await loadSnapshot(admin);
  for (const row of showRows(snap)) assert.equal(row.inUse, 0, `${row.cidr} still has ${row.inUse} in use`);
  assert.equal(snap.handles.length, 0);
  assert.equal((await admin.list('WorkloadEndpoint')).items.length, 0);

  // GC (1.1.0): a pod the runtime forgot (ADD without DEL) loses its veth, WEP and allocation.
  const podNs = `tcn-gc-${process.pid}`;
  execFileSync('ip', ['netns', 'add', podNs]);
  cleanups.push(async () => execFileSync('ip', ['netns', 'del', podNs]));
  const forgotten = await runPlugin({ plugin: 'tabby', command: 'ADD', conf: { ...statusConf, cniVersion: '1.0.0' }, containerId: 'tcn-forgotten', netns: `/var/run/netns/${podNs}`, cniPath: '/opt/cni/bin' });
  assert.equal(forgotten.code, 0, forgotten.raw);
  assert.equal(caliLinks().filter((l) => !before.includes(l)).length, 1);
  assert.equal((await admin.list('WorkloadEndpoint')).items.length, 1);
  const gc = await runPlugin({ plugin: 'tabby', command: 'GC', conf: { ...statusConf, 'cni.dev/valid-attachments': [] }, containerId: '', netns: '', cniPath: '/opt/cni/bin' });
  assert.equal(gc.code, 0, gc.raw);
  assert.equal(caliLinks().filter((l) => !before.includes(l)).length, 0);
  assert.equal((await admin.list('WorkloadEndpoint')).items.length, 0);
  const snap2 = await loadSnapshot(admin);
  for (const row of showRows(snap2)) assert.equal(row.inUse, 0, `after GC ${row.cidr} still has ${row.inUse} in use`);
});
