/**
 * CNI benchmark (not a test): one ADD+DEL cycle = netns create + ADD + DEL + netns delete, for
 *   - tabby fast path: the bin/tabby sh shim → socat → `tabby-node cni-server` (started for the bench
 *     inside the bench node namespace) + host-local; the server's CPU (utime+stime+cutime+cstime of
 *     /proc/<pid>/stat, so the host-local it execs counts too) is added to the cycle CPU
 *   - tabby (netlink dataplane) + host-local, the Node plugin (TABBY_CNI_SERVER=off: the shim execs it)
 *   - tabby (iproute2 dataplane, TABBY_CNI_DATAPLANE=iproute) + host-local
 *   - Debian bridge + host-local
 * 20 sequential and 10 concurrent cycles each, in the same run. All plugins run inside one bench
 * "node" namespace (tcp-bench-*) so the machine's own links are untouched; children are spawned
 * with the main thread switched into it (setns), so no `ip netns exec` wrapper is measured.
 * Run: node --import tsx bench/cni.ts   (root; builds dist/ first; NODE_EXTRA_CA_CERTS is unset
 * for every child). BENCH_SEQ / BENCH_CONC (20 / 10), BENCH_VARIANTS=<regexp> (a subset),
 * BENCH_ROUNDS=<n> (repeat, alternating the order), BENCH_SERVER_LOG_LEVEL (the server's pino level).
 * Phase breakdown: tabby runs with TABBY_CNI_TIMING=1 and reports (stderr) Node's bootstrap, our module
 * load, the dataplane module load (netlink library + koffi), time in IPAM, time opening a datastore and
 * the total; the rest of `total` is the netlink work and result/cache I/O. Medians per command.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { withNetns } from '../netlink/index.js';

const root = new URL('..', import.meta.url).pathname;
/** Another checkout (built) whose bin/tabby runs as an extra variant "tabby (baseline)", for before/after in one run. */
const BASELINE = process.env.BENCH_BASELINE_ROOT;
const SEQ = Number(process.env.BENCH_SEQ ?? 20);
const CONC = Number(process.env.BENCH_CONC ?? 10);

const env: NodeJS.ProcessEnv = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const nodeNs = `tcp-bench-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'tcp-bench-'));
const bin = join(dir, 'bin');

type Phases = Record<string, number>;
const phases = new Map<string, Phases[]>();

function run(cmd: string, args: string[], stdin: string | undefined, extraEnv: NodeJS.ProcessEnv, key?: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child: ChildProcess = withNetns(nodeNs, () => spawn(cmd, args, { env: { ...env, ...extraEnv }, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = performance.now() - t0;
      for (const line of err.split('\n')) {
        if (line.startsWith('{"tabbyTiming"')) {
          if (key) phases.set(key, [...(phases.get(key) ?? []), { ...(JSON.parse(line) as { tabbyTiming: Phases }).tabbyTiming, process: wall }]);
        } else if (line.trim() !== '') process.stderr.write(line + '\n');
      }
      resolve({ code, out });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
  });
}

interface Variant {
  name: string;
  conf: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  /** CPU ms of a process outside our children (the CNI server), read before/after each run. */
  extraCpu?: () => number;
}

let n = 0;
async function cycle(v: Variant): Promise<number> {
  const id = `${process.pid}-${n++}`;
  const ns = `tcp-b-${id}`;
  const t0 = performance.now();
  let r = await run('ip', ['netns', 'add', ns], undefined, {});
  if (r.code !== 0) throw new Error(`netns add ${ns} failed`);
  const cniEnv = { ...v.env, CNI_CONTAINERID: `bench-${id}`, CNI_NETNS: `/var/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: bin, CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=p-${id}` };
  const stdin = JSON.stringify(v.conf);
  r = await run(join(bin, String(v.conf.type)), [], stdin, { ...cniEnv, CNI_COMMAND: 'ADD' }, `${v.name}|ADD`);
  if (r.code !== 0) throw new Error(`${v.name} ADD: ${r.out}`);
  r = await run(join(bin, String(v.conf.type)), [], stdin, { ...cniEnv, CNI_COMMAND: 'DEL' }, `${v.name}|DEL`);
  if (r.code !== 0) throw new Error(`${v.name} DEL: ${r.out}`);
  r = await run('ip', ['netns', 'del', ns], undefined, {});
  return performance.now() - t0;
}

/**
 * CPU time (user + system) of every reaped child and grandchild so far, ms: fields cutime + cstime of
 * /proc/self/stat. The machine is shared, so wall times swing with the load; CPU time per cycle does not.
 */
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[13]) + Number(f[14])) * 1000) / TICKS;
}

/** CPU ms of another process and its reaped children: utime + stime + cutime + cstime. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / TICKS;
}

/** `tabby-node cni-server` in the bench node namespace; resolves once its socket accepts. */
async function startServer(runDir: string): Promise<ChildProcess> {
  const child = withNetns(nodeNs, () => spawn(join(root, 'bin/tabby-node'), ['cni-server'], { env: { ...env, TABBY_RUN_DIR: runDir, LOG_LEVEL: process.env.BENCH_SERVER_LOG_LEVEL ?? 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] }));
  const sock = join(runDir, 'cni.sock');
  for (let i = 0; i < 300; i++) {
    if (existsSync(sock)) {
      await new Promise((r) => setTimeout(r, 100));
      return child;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error('tabby-node cni-server did not start');
}
const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

async function measure(v: Variant): Promise<string[]> {
  await cycle(v); // warm the page cache
  phases.delete(`${v.name}|ADD`);
  phases.delete(`${v.name}|DEL`);
  const seq: number[] = [];
  const ext = () => v.extraCpu?.() ?? 0;
  const cpu = () => childCpuMs() + ext();
  const cpu0 = cpu();
  const x0 = ext();
  const s0 = performance.now();
  for (let i = 0; i < SEQ; i++) seq.push(await cycle(v));
  const seqWall = performance.now() - s0;
  const cpu1 = cpu();
  const x1 = ext();
  const c0 = performance.now();
  const conc = await Promise.all(Array.from({ length: CONC }, () => cycle(v)));
  const concWall = performance.now() - c0;
  const cpu2 = cpu();
  const x2 = ext();
  const of = (d: number, n: number) => (v.extraCpu ? (d / n).toFixed(1) : '–');
  const ss = [...seq].sort((a, b) => a - b);
  const cs = [...conc].sort((a, b) => a - b);
  return [
    `| ${v.name} | ${SEQ} sequential | ${(seqWall / SEQ).toFixed(1)} | ${pct(ss, 50).toFixed(1)} | ${pct(ss, 99).toFixed(1)} | ${seqWall.toFixed(0)} | ${((cpu1 - cpu0) / SEQ).toFixed(1)} | ${of(x1 - x0, SEQ)} |`,
    `| ${v.name} | ${CONC} concurrent | ${(concWall / CONC).toFixed(1)} | ${pct(cs, 50).toFixed(1)} | ${pct(cs, 99).toFixed(1)} | ${concWall.toFixed(0)} | ${((cpu2 - cpu1) / CONC).toFixed(1)} | ${of(x2 - x1, CONC)} |`,
  ];
}

async function main(): Promise<void> {
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'ignore' });
  mkdirSync(bin);
  symlinkSync(join(root, 'bin/tabby'), join(bin, 'tabby'));
  if (BASELINE) symlinkSync(join(BASELINE, 'bin/tabby'), join(bin, 'tabby-baseline'));
  for (const p of ['host-local', 'bridge']) symlinkSync(join('/usr/lib/cni', p), join(bin, p));
  execFileSync('ip', ['netns', 'add', nodeNs]);
  execFileSync('ip', ['-n', nodeNs, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', nodeNs, 'link', 'add', 'tcnup0', 'type', 'veth', 'peer', 'name', 'tcnup1']);
  const runDir = join(dir, 'run');
  let server: ChildProcess | undefined;
  try {
    server = await startServer(runDir);
    const serverPid = server.pid!;
    const ipam = (sub: string) => ({ type: 'host-local', subnet: `10.95.${sub}.0/24`, dataDir: join(dir, `ipam-${sub}`) });
    const base = { cniVersion: '1.0.0', name: 'tcn-bench' };
    const variants: Variant[] = [
      {
        name: 'tabby fast path (shim → tabby-node server) + host-local',
        conf: { ...base, type: 'tabby', run_dir: runDir, lib_dir: join(dir, 'lib'), log_file_path: join(dir, 'cni.log'), ipam: ipam('5') },
        env: {},
        extraCpu: () => processCpuMs(serverPid),
      },
      { name: 'tabby Node plugin (netlink) + host-local', conf: { ...base, type: 'tabby', lib_dir: join(dir, 'lib'), log_file_path: join(dir, 'cni.log'), ipam: ipam('1') }, env: { TABBY_CNI_SERVER: 'off', TABBY_CNI_TIMING: '1' } },
      { name: 'tabby Node plugin (iproute2) + host-local', conf: { ...base, type: 'tabby', lib_dir: join(dir, 'lib'), log_file_path: join(dir, 'cni.log'), ipam: ipam('2') }, env: { TABBY_CNI_SERVER: 'off', TABBY_CNI_DATAPLANE: 'iproute', TABBY_CNI_TIMING: '1' } },
      ...(BASELINE ? [{ name: 'tabby baseline (netlink) + host-local', conf: { ...base, type: 'tabby-baseline', lib_dir: join(dir, 'lib'), log_file_path: join(dir, 'cni.log'), ipam: ipam('4') }, env: {} }] : []),
      { name: 'Debian bridge + host-local', conf: { ...base, type: 'bridge', bridge: 'tcnbr0', isGateway: true, ipMasq: false, ipam: ipam('3') }, env: {} },
    ];
    const startup: string[] = [];
    const versionConf = JSON.stringify({ cniVersion: '1.0.0', run_dir: runDir });
    for (const [name, cmd, extra] of [
      ['tabby VERSION (fast path)', join(bin, 'tabby'), {}],
      ['tabby VERSION (Node plugin)', join(bin, 'tabby'), { TABBY_CNI_SERVER: 'off' }],
      ['bridge VERSION', join(bin, 'bridge'), {}],
    ] as const) {
      const t: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        await run(cmd, [], versionConf, { CNI_COMMAND: 'VERSION', ...extra });
        t.push(performance.now() - t0);
      }
      t.sort((a, b) => a - b);
      startup.push(`${name}: p50 ${pct(t, 50).toFixed(1)} ms`);
    }
    const rows: string[] = [];
    // BENCH_VARIANTS=<regexp>: only the variants whose name matches (e.g. "fast|bridge").
    const only = process.env.BENCH_VARIANTS ? new RegExp(process.env.BENCH_VARIANTS) : undefined;
    // BENCH_ROUNDS=<n>: measure every variant n times, alternating the order (A B, B A, …), so a load
    // change on the shared machine does not always hit the same variant.
    const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
    const picked = variants.filter((v) => !only || only.test(v.name));
    for (let r = 0; r < rounds; r++) {
      for (const v of r % 2 === 0 ? picked : [...picked].reverse()) {
        const lines = await measure(v);
        rows.push(...(rounds > 1 ? lines.map((l) => l.replace(`| ${v.name} |`, `| ${v.name} (round ${r + 1}) |`)) : lines));
      }
    }
    console.log(`CNI ADD+DEL cycle (netns add + ADD + DEL + netns del), ${new Date().toISOString()}, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    console.log(startup.join('; '));
    console.log('| variant | run | ms/cycle (wall/n) | p50 ms | p99 ms | wall ms | CPU ms/cycle | of which server |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
    const cols = ['boot', 'load', 'dataplaneLoad', 'ipam', 'datastoreOpen', 'rest', 'total', 'process'];
    console.log('\nPhase medians (ms; `rest` = total minus the named phases: netlink work, stdin, cache/log I/O; `process` = spawn to exit as the bench sees it)');
    console.log(`| variant | command | ${cols.join(' | ')} |`);
    console.log(`|---|---|${cols.map(() => '---').join('|')}|`);
    for (const [key, list] of phases) {
      const med = (f: (p: Phases) => number) => pct(list.map(f).sort((a, b) => a - b), 50);
      const rest = (p: Phases) => (p.total ?? 0) - ['boot', 'load', 'dataplaneLoad', 'ipam', 'datastoreOpen'].reduce((a, k) => a + (p[k] ?? 0), 0);
      const vals = cols.map((c) => (c === 'rest' ? med(rest) : med((p) => p[c] ?? 0)).toFixed(1));
      const [name, command] = key.split('|');
      console.log(`| ${name} | ${command} (n=${list.length}) | ${vals.join(' | ')} |`);
    }
  } finally {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    execFileSync('ip', ['netns', 'del', nodeNs]);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
