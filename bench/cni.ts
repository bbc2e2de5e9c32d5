/**
 * CNI benchmark (not a test): one ADD+DEL cycle = netns create + ADD + DEL + netns delete, for
 *   - tabby (netlink dataplane) + host-local
 *   - tabby (iproute2 dataplane, TABBY_CNI_DATAPLANE=iproute) + host-local
 *   - Debian bridge + host-local
 * 20 sequential and 10 concurrent cycles each, in the same run. All plugins run inside one bench
 * "node" namespace (tcn-bench-*) so the machine's own links are untouched; children are spawned
 * with the main thread switched into it (setns), so no `ip netns exec` wrapper is measured.
 * Run: node --import tsx bench/cni.ts   (root; builds dist/ first; NODE_EXTRA_CA_CERTS is unset
 * for every child).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { withNetns } from '../netlink/index.js';

const root = new URL('..', import.meta.url).pathname;
const SEQ = Number(process.env.BENCH_SEQ ?? 20);
const CONC = Number(process.env.BENCH_CONC ?? 10);

const env: NodeJS.ProcessEnv = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const nodeNs = `tcn-bench-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'tcn-bench-'));
const bin = join(dir, 'bin');

function run(cmd: string, args: string[], stdin: string | undefined, extraEnv: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = withNetns(nodeNs, () => spawn(cmd, args, { env: { ...env, ...extraEnv }, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'inherit'] }));
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
  });
}

interface Variant {
  name: string;
  conf: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
}

let n = 0;
async function cycle(v: Variant): Promise<number> {
  const id = `${process.pid}-${n++}`;
  const ns = `tcn-b-${id}`;
  const t0 = performance.now();
  let r = await run('ip', ['netns', 'add', ns], undefined, {});
  if (r.code !== 0) throw new Error(`netns add ${ns} failed`);
  const cniEnv = { ...v.env, CNI_CONTAINERID: `bench-${id}`, CNI_NETNS: `/var/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: bin, CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=p-${id}` };
  const stdin = JSON.stringify(v.conf);
  r = await run(join(bin, String(v.conf.type)), [], stdin, { ...cniEnv, CNI_COMMAND: 'ADD' });
  if (r.code !== 0) throw new Error(`${v.name} ADD: ${r.out}`);
  r = await run(join(bin, String(v.conf.type)), [], stdin, { ...cniEnv, CNI_COMMAND: 'DEL' });
  if (r.code !== 0) throw new Error(`${v.name} DEL: ${r.out}`);
  r = await run('ip', ['netns', 'del', ns], undefined, {});
  return performance.now() - t0;
}

async function measure(v: Variant): Promise<string[]> {
  await cycle(v); // warm the page cache
  const seq: number[] = [];
  const s0 = performance.now();
  for (let i = 0; i < SEQ; i++) seq.push(await cycle(v));
  const seqWall = performance.now() - s0;
  const c0 = performance.now();
  const conc = await Promise.all(Array.from({ length: CONC }, () => cycle(v)));
  const concWall = performance.now() - c0;
  const ss = [...seq].sort((a, b) => a - b);
  const cs = [...conc].sort((a, b) => a - b);
  return [
    `| ${v.name} | ${SEQ} sequential | ${(seqWall / SEQ).toFixed(1)} | ${pct(ss, 50).toFixed(1)} | ${pct(ss, 99).toFixed(1)} | ${seqWall.toFixed(0)} |`,
    `| ${v.name} | ${CONC} concurrent | ${(concWall / CONC).toFixed(1)} | ${pct(cs, 50).toFixed(1)} | ${pct(cs, 99).toFixed(1)} | ${concWall.toFixed(0)} |`,
  ];
}

async function main(): Promise<void> {
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'ignore' });
  mkdirSync(bin);
  symlinkSync(join(root, 'bin/tabby'), join(bin, 'tabby'));
  for (const p of ['host-local', 'bridge']) symlinkSync(join('/usr/lib/cni', p), join(bin, p));
  execFileSync('ip', ['netns', 'add', nodeNs]);
  execFileSync('ip', ['-n', nodeNs, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', nodeNs, 'link', 'add', 'tcnup0', 'type', 'veth', 'peer', 'name', 'tcnup1']);
  try {
    const ipam = (sub: string) => ({ type: 'host-local', subnet: `10.95.${sub}.0/24`, dataDir: join(dir, `ipam-${sub}`) });
    const base = { cniVersion: '1.0.0', name: 'tcn-bench' };
    const variants: Variant[] = [
      { name: 'tabby (netlink) + host-local', conf: { ...base, type: 'tabby', lib_dir: join(dir, 'lib'), log_file_path: join(dir, 'cni.log'), ipam: ipam('1') }, env: {} },
      { name: 'tabby (iproute2) + host-local', conf: { ...base, type: 'tabby', lib_dir: join(dir, 'lib'), log_file_path: join(dir, 'cni.log'), ipam: ipam('2') }, env: { TABBY_CNI_DATAPLANE: 'iproute' } },
      { name: 'Debian bridge + host-local', conf: { ...base, type: 'bridge', bridge: 'tcnbr0', isGateway: true, ipMasq: false, ipam: ipam('3') }, env: {} },
    ];
    const startup: string[] = [];
    for (const [name, cmd] of [['tabby VERSION', join(bin, 'tabby')], ['bridge VERSION', join(bin, 'bridge')]] as const) {
      const t: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        await run(cmd, [], '', { CNI_COMMAND: 'VERSION' });
        t.push(performance.now() - t0);
      }
      t.sort((a, b) => a - b);
      startup.push(`${name}: p50 ${pct(t, 50).toFixed(1)} ms`);
    }
    const rows: string[] = [];
    for (const v of variants) rows.push(...(await measure(v)));
    console.log(`CNI ADD+DEL cycle (netns add + ADD + DEL + netns del), ${new Date().toISOString()}`);
    console.log(startup.join('; '));
    console.log('| variant | run | ms/cycle (wall/n) | p50 ms | p99 ms | wall ms |');
    console.log('|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    execFileSync('ip', ['netns', 'del', nodeNs]);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
