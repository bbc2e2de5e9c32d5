// Benchmark: N routes (default 100k) into a fresh netns through Netlink.batch() vs `ip -batch` of the
// same routes, in the same run. Needs root. Usage: node --import tsx bench/netlink-batch.ts [N]
// Target (issue 4): batch ≥ 1.5× faster than ip -batch. Numbers go into bench/RESULTS.md.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netlink } from '../netlink/index.js';

const N = Number(process.argv[2] ?? 100_000);
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', maxBuffer: 1 << 28 });
const dst = (i: number): string => `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;

function freshNetns(name: string): void {
  if (existsSync(`/var/run/netns/${name}`)) ip('netns', 'del', name);
  ip('netns', 'add', name);
  ip('-n', name, 'link', 'add', 'tnlb0', 'type', 'veth', 'peer', 'name', 'tnlb1');
  ip('-n', name, 'addr', 'add', '10.1.0.1/24', 'dev', 'tnlb0');
  ip('-n', name, 'link', 'set', 'tnlb0', 'up');
  ip('-n', name, 'link', 'set', 'tnlb1', 'up');
}

const countRoutes = (ns: string): number => ip('-n', ns, 'route', 'show', 'proto', '80').split('\n').filter(Boolean).length;

async function viaBatch(ns: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const nl = Netlink.open({ netns: ns });
  try {
    const oif = (await nl.linkByName('tnlb0')).index;
    const b = nl.batch();
    for (let i = 0; i < N; i++) b.routeAdd({ dst: dst(i), gw: '10.1.0.2', oif, protocol: 80 });
    const res = await b.run();
    if (res.failed) throw new Error(`batch: ${res.failed} failures, first: ${res.errors.find(Boolean)?.message}`);
  } finally {
    nl.close();
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function viaIpBatch(ns: string, dir: string): number {
  const file = join(dir, 'routes.batch');
  const lines: string[] = [];
  for (let i = 0; i < N; i++) lines.push(`route add ${dst(i)} via 10.1.0.2 dev tnlb0 proto 80`);
  writeFileSync(file, lines.join('\n') + '\n');
  const t0 = process.hrtime.bigint();
  ip('-n', ns, '-batch', file);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('netlink-batch bench: needs root (network namespaces)');
    process.exit(2);
  }
  const nsA = `tnl-bench-a-${process.pid}`;
  const nsB = `tnl-bench-b-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'tnl-bench-'));
  try {
    freshNetns(nsA);
    freshNetns(nsB);
    const ipMs = viaIpBatch(nsB, dir);
    const nlMs = await viaBatch(nsA);
    const [ca, cb] = [countRoutes(nsA), countRoutes(nsB)];
    if (ca !== N || cb !== N) throw new Error(`route counts differ from ${N}: batch ${ca}, ip -batch ${cb}`);
    const r = (n: number) => Math.round(n);
    console.log(`routes:              ${N}`);
    console.log(`Netlink.batch():     ${r(nlMs)} ms  (${r(N / (nlMs / 1000))} routes/s)`);
    console.log(`ip -batch:           ${r(ipMs)} ms  (${r(N / (ipMs / 1000))} routes/s)`);
    console.log(`speed-up:            ${(ipMs / nlMs).toFixed(2)}x  (target >= 1.5x)`);
  } finally {
    for (const ns of [nsA, nsB]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
