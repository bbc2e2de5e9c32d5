/**
 * IPAM on a real etcd: simulated nodes allocating and releasing concurrently (in-process, one etcd
 * client per node), real `tabby-ipam` processes, a process killed between handle and block write,
 * and etcd going away mid-run. Invariants: no address twice, every address in its pool, blocks
 * affine to the node that uses them, and after releasing everything `ipam check` is clean and
 * `ipam show` reports 0 in use.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdDatastore } from '../../datastore/etcd.js';
import type { Datastore } from '../../datastore/types.js';
import { Ipam } from '../../ipam/ipam.js';
import { parseCidr, parseIp, cidrContains } from '../../ipam/cidr.js';
import { checkIpam, loadSnapshot, releaseFromReport, showRows, workloadEndpointOwners } from '../../ipam/report.js';
import { etcdMissing, startEtcd, type EtcdHarness } from '../datastore/etcd-harness.js';
import { addPool } from './fixtures.js';

const root = new URL('../..', import.meta.url).pathname;
const PORTS = { clientPorts: [23810, 23819] as [number, number], peerPorts: [23820, 23829] as [number, number] };

let prefixN = 0;
/** Each test gets its own key prefix in the shared etcd, so tests don't see each other's data. */
function client(etcd: EtcdHarness, prefix: string): EtcdDatastore {
  return new EtcdDatastore({ endpoints: [etcd.endpoint], keyPrefix: prefix, requestTimeoutMs: 3000 });
}

async function withEtcd(t: TestContext): Promise<{ etcd: EtcdHarness; prefix: string } | undefined> {
  const reason = etcdMissing();
  if (reason) {
    t.skip(reason);
    return undefined;
  }
  const etcd = await startEtcd(PORTS);
  t.after(() => etcd.stop());
  return { etcd, prefix: `/tabby-ipam-test-${process.pid}-${prefixN++}/` };
}

function assertInvariants(assigned: Array<{ ip: string; node: string; block: string }>, pools: string[], affinity: Map<string, string | null | undefined>): void {
  const seen = new Set<string>();
  for (const a of assigned) {
    assert.equal(seen.has(a.ip), false, `${a.ip} handed out twice`);
    seen.add(a.ip);
    const { family, value } = parseIp(a.ip);
    assert.ok(pools.some((p) => cidrContains(parseCidr(p), family, value)), `${a.ip} outside the pools`);
    assert.equal(affinity.get(a.block), `host:${a.node}`, `${a.ip} block ${a.block} not affine to ${a.node}`);
  }
}

async function assertCleanAndEmpty(ds: Datastore): Promise<void> {
  const snap = await loadSnapshot(ds);
  const report = checkIpam(snap, await workloadEndpointOwners(ds)());
  assert.equal(report.summary.problems, 0, JSON.stringify(report, null, 1));
  for (const row of showRows(snap)) assert.equal(row.inUse, 0, `${row.cidr} still has ${row.inUse} in use`);
  assert.equal(snap.handles.length, 0);
}

test('N nodes × M parallel allocations and releases on etcd: unique, in pool, affine, clean afterwards', async (t) => {
  const env = await withEtcd(t);
  if (!env) return;
  const NODES = 4;
  const PER_NODE = 30;
  const admin = client(env.etcd, env.prefix);
  t.after(() => admin.close());
  const pools = ['10.80.0.0/20', 'fd00:80::/116'];
  await addPool(admin, 'v4', { cidr: pools[0]! });
  await addPool(admin, 'v6', { cidr: pools[1]! });
  const nodes = Array.from({ length: NODES }, (_, i) => {
    const ds = client(env.etcd, env.prefix);
    t.after(() => ds.close());
    return { name: `sim-node-${i}`, ipam: new Ipam({ datastore: ds }) };
  });
  const assigned: Array<{ ip: string; node: string; block: string; handle: string }> = [];
  // Allocate in parallel everywhere; release every third one while others are still allocating.
  await Promise.all(
    nodes.map(async (n) => {
      await Promise.all(
        Array.from({ length: PER_NODE }, async (_, j) => {
          const handle = `k8s-pod-network.${n.name}-${j}`;
          const r = await n.ipam.autoAssign({ num4: 1, num6: j % 2, handleId: handle, hostname: n.name, attrs: { node: n.name } });
          for (const a of [...r.ipv4, ...r.ipv6]) assigned.push({ ip: a.ip, node: n.name, block: a.block, handle });
          if (j % 3 === 0) await n.ipam.releaseByHandle(handle, n.name);
        }),
      );
    }),
  );
  const snap = await loadSnapshot(admin);
  const affinity = new Map(snap.blocks.map((b) => [b.spec.cidr, b.spec.affinity]));
  assertInvariants(assigned, pools, affinity);
  const liveHandles = new Set(assigned.filter((a) => !/-(\d+)$/.exec(a.handle) || Number(/-(\d+)$/.exec(a.handle)![1]) % 3 !== 0).map((a) => a.handle));
  const report = checkIpam(snap, { handles: liveHandles, nodes: new Set() });
  assert.equal(report.summary.problems, 0, JSON.stringify(report.summary));
  assert.equal(report.summary.allocations, [...assigned].filter((a) => liveHandles.has(a.handle)).length);
  for (const a of snap.affinities) assert.equal(a.spec.state, 'confirmed');
  // Release the rest in parallel, by IP for half the nodes and by handle for the others.
  await Promise.all(
    nodes.map(async (n, i) => {
      const mine = assigned.filter((a) => a.node === n.name && liveHandles.has(a.handle));
      if (i % 2) await n.ipam.releaseIps(mine.map((a) => a.ip), n.name);
      else await Promise.all([...new Set(mine.map((a) => a.handle))].map((h) => n.ipam.releaseByHandle(h, n.name)));
    }),
  );
  await assertCleanAndEmpty(admin);
});

function buildOnce(): void {
  const r = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

interface PluginRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: Record<string, unknown>;
}

function runPlugin(conf: object, env: Record<string, string>): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const penv: NodeJS.ProcessEnv = { PATH: process.env.PATH, CNI_PATH: '/usr/lib/cni', CNI_IFNAME: 'eth0', CNI_NETNS: '/var/run/netns/none', ...env };
    const p = spawn(join(root, 'bin/tabby-ipam'), [], { env: penv, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      try {
        resolve({ code, signal, out: out.trim() ? (JSON.parse(out) as Record<string, unknown>) : {} });
      } catch {
        reject(new Error(`bad plugin output ${JSON.stringify(out)} stderr ${err}`));
      }
    });
    p.stdin.end(JSON.stringify(conf));
  });
}

test('real tabby-ipam processes: parallel ADD on 3 nodes, DEL all, crash leak found and repaired, etcd down → 11', async (t) => {
  const env = await withEtcd(t);
  if (!env) return;
  buildOnce();
  const dir = mkdtempSync(join(tmpdir(), 'tabby-ipam-int-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The plugin reads the default key prefix; give this test its own etcd keyspace by using the default prefix here.
  const admin = new EtcdDatastore({ endpoints: [env.etcd.endpoint] });
  t.after(() => admin.close());
  await addPool(admin, 'v4', { cidr: '10.90.0.0/22' });
  const conf = (node: string) => ({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'tabby-ipam',
    nodename: node,
    datastore_type: 'etcdv3',
    etcd_endpoints: env.etcd.endpoint,
    log_file_path: join(dir, 'cni.log'),
    ipam: { type: 'tabby-ipam', run_dir: join(dir, 'run') },
  });
  const NODES = ['proc-a', 'proc-b', 'proc-c'];
  const PER = 4;
  const runs = await Promise.all(
    NODES.flatMap((node) => Array.from({ length: PER }, (_, i) => runPlugin(conf(node), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `${node}-c${i}` }).then((r) => ({ node, r })))),
  );
  const assigned = runs.map(({ node, r }) => {
    assert.equal(r.code, 0, JSON.stringify(r.out));
    const ip = ((r.out.ips as Array<{ address: string }>)[0]!.address).split('/')[0]!;
    return { ip, node, block: '' };
  });
  const snap = await loadSnapshot(admin);
  for (const a of assigned) {
    const { family, value } = parseIp(a.ip);
    a.block = snap.blocks.find((b) => cidrContains(parseCidr(b.spec.cidr), family, value))!.spec.cidr;
  }
  assertInvariants(assigned, ['10.90.0.0/22'], new Map(snap.blocks.map((b) => [b.spec.cidr, b.spec.affinity])));
  // The per-node flock serialises the node's parallel ADDs: the first claims a block, the others use it.
  for (const node of NODES) assert.equal(snap.affinities.filter((x) => x.spec.node === node).length, 1, `${node} claimed more than one block`);

  // DEL everything in parallel; twice, to prove idempotence.
  for (let round = 0; round < 2; round++) {
    const dels = await Promise.all(NODES.flatMap((node) => Array.from({ length: PER }, (_, i) => runPlugin(conf(node), { CNI_COMMAND: 'DEL', CNI_CONTAINERID: `${node}-c${i}` }))));
    for (const d of dels) assert.equal(d.code, 0, JSON.stringify(d.out));
  }
  await assertCleanAndEmpty(admin);

  // Killed between the handle write and the block write.
  const crash = await runPlugin(conf('proc-a'), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'doomed', TABBY_IPAM_TEST_CRASH: 'after-handle-write' });
  assert.equal(crash.signal, 'SIGKILL');
  const report = checkIpam(await loadSnapshot(admin), await workloadEndpointOwners(admin)());
  assert.deepEqual(report.handlesWithoutIps.map((h) => h.handleID), ['k8s-pod-network.doomed']);
  assert.equal(report.summary.problems, 1);
  const fixed = await releaseFromReport(new Ipam({ datastore: admin }), JSON.parse(JSON.stringify(report)));
  assert.deepEqual(fixed.handlesRepaired, ['k8s-pod-network.doomed']);
  await assertCleanAndEmpty(admin);

  // etcd down: ADD says "try again later" (11) and writes nothing; after restart ADD works.
  await env.etcd.kill();
  const down = await runPlugin(conf('proc-b'), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'while-down' });
  assert.equal(down.code, 1);
  assert.equal(down.out.code, 11, JSON.stringify(down.out));
  await env.etcd.start();
  const up = await runPlugin(conf('proc-b'), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'while-down' });
  assert.equal(up.code, 0, JSON.stringify(up.out));
  assert.equal((await runPlugin(conf('proc-b'), { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'while-down' })).code, 0);
  await assertCleanAndEmpty(admin);
});

test('etcd restart in the middle of allocations: failures are clean, the rest is consistent', async (t) => {
  const env = await withEtcd(t);
  if (!env) return;
  const ds = client(env.etcd, env.prefix);
  t.after(() => ds.close());
  await addPool(ds, 'v4', { cidr: '10.70.0.0/22' });
  const ipam = new Ipam({ datastore: ds });
  const ok: string[] = [];
  let failures = 0;
  // Each "pod" retries like a kubelet would, so every allocation eventually succeeds.
  const work = Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      const node = i % 2 ? 'r1' : 'r2';
      for (let attempt = 0; ; attempt++) {
        try {
          await ipam.autoAssign({ num4: 1, handleId: `h${i}`, hostname: node, attrs: { node } });
          ok.push(`h${i}`);
          return;
        } catch (err) {
          failures++;
          if (attempt > 30) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }),
  );
  await new Promise((r) => setTimeout(r, 50));
  await env.etcd.restart();
  await work;
  t.diagnostic(`40 allocations, ${failures} failed attempts across the restart`);
  assert.equal(ok.length, 40);
  const r = checkIpam(await loadSnapshot(ds), { handles: new Set(ok), nodes: new Set() });
  // An attempt cut off mid-way may leave a handle count without its block write (then retried and
  // succeeded: a count mismatch). check must see it and release-from-report must fix it; no address
  // may be leaked or duplicated.
  assert.equal(r.summary.leakedIps + r.summary.ipsOutsidePools, 0, JSON.stringify(r));
  await releaseFromReport(ipam, r);
  const mid = checkIpam(await loadSnapshot(ds), { handles: new Set(ok), nodes: new Set() });
  assert.equal(mid.summary.problems, 0, JSON.stringify(mid));
  for (const h of ok) await ipam.releaseByHandle(h);
  await assertCleanAndEmpty(ds);
});
