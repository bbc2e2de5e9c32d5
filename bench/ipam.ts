/**
 * IPAM benchmark (not a test): allocations/s and latency percentiles.
 *   1. one node, sequential, in-process, on etcd
 *   2. 8 nodes concurrent (one etcd client each), on etcd; duplicates counted
 *   3. CNI ADD latency of the `tabby-ipam` process vs Debian's host-local, same run
 *   0. (reference) the allocator over the memory datastore
 * Run: node --import tsx bench/ipam.ts   (needs etcd-server; builds dist/ first)
 * Ports: etcd client 23810-23819, peer 23820-23829.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EtcdDatastore } from '../datastore/etcd.js';
import { MemoryDatastore } from '../datastore/memory.js';
import { Ipam } from '../ipam/ipam.js';
import { etcdMissing, startEtcd } from '../test/datastore/etcd-harness.js';
import { addPool } from '../test/ipam/fixtures.js';

const root = new URL('..', import.meta.url).pathname;
const HOST_LOCAL = '/usr/lib/cni/host-local';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function summary(name: string, lat: number[], wallMs: number): string {
  const s = [...lat].sort((a, b) => a - b);
  return `| ${name} | ${lat.length} | ${((lat.length / wallMs) * 1000).toFixed(0)} | ${pct(s, 50).toFixed(2)} | ${pct(s, 99).toFixed(2)} |`;
}

function runProc(cmd: string, stdin: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, [], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ ms: performance.now() - t0, code, out }));
    p.stdin.end(stdin);
  });
}

async function main(): Promise<void> {
  const missing = etcdMissing();
  if (missing) {
    console.error(`bench/ipam: ${missing}`);
    process.exit(2);
  }
  const etcd = await startEtcd({ clientPorts: [23810, 23819], peerPorts: [23820, 23829] });
  const dir = mkdtempSync(join(tmpdir(), 'tabby-ipam-bench-'));
  const rows: string[] = [];
  try {
    const admin = new EtcdDatastore({ endpoints: [etcd.endpoint] });
    await addPool(admin, 'bench', { cidr: '10.128.0.0/14' });

    // 0. the allocator alone (memory datastore): what the algorithm costs without network I/O.
    {
      const mem = new MemoryDatastore();
      await addPool(mem, 'bench', { cidr: '10.128.0.0/14' });
      const ipam = new Ipam({ datastore: mem });
      const lat: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < 1200; i++) {
        const s = performance.now();
        await ipam.autoAssign({ num4: 1, handleId: `mem-${i}`, hostname: 'bench-mem', attrs: { node: 'bench-mem' } });
        lat.push(performance.now() - s);
      }
      rows.push(summary('1 node sequential (memory datastore, in-process)', lat, performance.now() - t0));
    }

    // 1. one node, sequential.
    {
      const ipam = new Ipam({ datastore: admin });
      const lat: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < 1000; i++) {
        const s = performance.now();
        await ipam.autoAssign({ num4: 1, handleId: `seq-${i}`, hostname: 'bench-seq', attrs: { node: 'bench-seq' } });
        lat.push(performance.now() - s);
      }
      rows.push(summary('1 node sequential (etcd, in-process)', lat, performance.now() - t0));
    }

    // 2. 8 nodes concurrent, each allocating sequentially, all at once.
    {
      const N = 8;
      const PER = 250;
      const clients = Array.from({ length: N }, () => new EtcdDatastore({ endpoints: [etcd.endpoint] }));
      const lat: number[] = [];
      const ips: string[] = [];
      const t0 = performance.now();
      await Promise.all(
        clients.map(async (ds, n) => {
          const ipam = new Ipam({ datastore: ds });
          for (let i = 0; i < PER; i++) {
            const s = performance.now();
            const r = await ipam.autoAssign({ num4: 1, handleId: `c-${n}-${i}`, hostname: `bench-${n}`, attrs: { node: `bench-${n}` } });
            lat.push(performance.now() - s);
            ips.push(r.ipv4[0]!.ip);
          }
        }),
      );
      const wall = performance.now() - t0;
      rows.push(summary('8 nodes concurrent (etcd, in-process, aggregate)', lat, wall));
      rows.push(`| … per node | ${PER} | ${((PER / wall) * 1000).toFixed(0)} | | |`);
      rows.push(`| duplicates under contention | ${new Set(ips).size === ips.length ? 0 : ips.length - new Set(ips).size} | | | |`);
      await Promise.all(clients.map((c) => c.close()));
    }

    // 3. process ADD latency: tabby-ipam vs host-local.
    {
      spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, CNI_PATH: '/usr/lib/cni', CNI_IFNAME: 'eth0', CNI_NETNS: '/var/run/netns/bench', CNI_COMMAND: 'ADD' };
      const tabbyConf = JSON.stringify({
        cniVersion: '1.0.0',
        name: 'k8s-pod-network',
        type: 'tabby-ipam',
        nodename: 'bench-proc',
        datastore_type: 'etcdv3',
        etcd_endpoints: etcd.endpoint,
        log_file_path: join(dir, 'cni.log'),
        ipam: { type: 'tabby-ipam', run_dir: join(dir, 'run') },
      });
      const hlConf = JSON.stringify({
        cniVersion: '1.0.0',
        name: 'bench-hl',
        type: 'host-local',
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.200.0.0/16' }]], dataDir: join(dir, 'host-local') },
      });
      const RUNS = 40;
      const tl: number[] = [];
      const hl: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const a = await runProc(join(root, 'bin/tabby-ipam'), tabbyConf, { ...env, CNI_CONTAINERID: `p-${i}` });
        if (a.code !== 0) throw new Error(`tabby-ipam failed: ${a.out}`);
        tl.push(a.ms);
        if (existsSync(HOST_LOCAL)) {
          const b = await runProc(HOST_LOCAL, hlConf, { ...env, CNI_CONTAINERID: `p-${i}` });
          if (b.code !== 0) throw new Error(`host-local failed: ${b.out}`);
          hl.push(b.ms);
        }
      }
      const sum = (l: number[]) => l.reduce((x, y) => x + y, 0);
      rows.push(summary('tabby-ipam process ADD (etcd)', tl, sum(tl)));
      if (hl.length) rows.push(summary('host-local process ADD (Debian)', hl, sum(hl)));
    }
    await admin.close();
  } finally {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('| scenario | ops | ops/s | p50 ms | p99 ms |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

delete process.env.NODE_EXTRA_CA_CERTS;
await main();
