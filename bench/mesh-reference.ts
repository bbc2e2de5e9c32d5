// Benchmark: the reference and the floor for bench/mesh-scale.ts (issue 6: a 100-node BGP full mesh
// converging in ≤ 10 s). For each size N (default 10,25,50,100; `BENCH_MESH_SIZES=10,25` to choose),
// one after the other, never at the same time:
//
// 1. BIRD full mesh: N namespaces on one bridge (the layout of bench/_mesh.ts with prefix `tbm-`,
//    addresses 172.28.0.0/16: bridge 172.28.0.2 in `tbm-fab`, node i = 172.28.<1 + i>>8>.<i & 255> in
//    `tbm-n<i>`, permanent ARP entries), each running `bird` (bird2) with the configuration confd
//    renders for calico-node (reference calico.md §5; see birdConfig below): router id = node IP, AS
//    64512, a static blackhole for its own /26 of 10.249.0.0/16 exported to the mesh, N−1 `Mesh_<ip>`
//    iBGP peers from one template (passive when the peer's IP is greater as a string, connect delay 2 s,
//    connect retry 5 s, error wait 5,30, graceful restart, gateway recursive, add paths), and a kernel
//    protocol programming what it learns. Started as calico-node starts it: `bird -R -s <ctl> -d -c <cfg>`
//    (BENCH_BIRD_FLAGS replaces `-R -d`). Converged = the later of every kernel holding the N−1 other
//    blocks (a netlink route subscription per namespace, as _mesh.ts) and every BIRD reporting all N−1
//    sessions Established (`birdc -s <ctl> show protocols`, polled every 500 ms once the routes are in;
//    the moment is BIRD's own "since" of the last session to come up, millisecond time format).
// 2. Node floor: the cheapest conceivable Node.js full mesh: the same layout with prefix `tbf-` and
//    172.27.0.0/16, one `node bench/_mesh-floor-agent.mjs` per namespace that does OPEN/KEEPALIVE/UPDATE
//    (real sizes, dummy bodies) over TCP with every peer, unidirectional like Calico, peers from argv,
//    nothing installed. Converged = every agent printed `done` (its own timestamp).
// 3. With BENCH_WITH_TABBY=1, tabby-node: bench/mesh-scale.ts run as a child for the same size, its
//    table row parsed (it needs `npm run build` and etcd; it does its own cleanup).
// t=0 is the spawn of the first process of the size. Printed per size: full convergence, first route
// (BIRD) / first completed session (floor), how long spawning all N took, CPU seconds of all the
// daemons (time on CPU from /proc/<pid>/task/*/schedstat, read once converged) and the median per
// daemon, the bench process's own CPU (spawning, route events, birdc), the machine's busy / idle CPU-s
// over the run (/proc/stat), VmRSS median / max, load, and ratios against BIRD. Floor agents take
// FLOOR_RETRY_MS, FLOOR_RETRY_MAX_MS, FLOOR_CONNECT_DELAY_MS from the environment (_mesh-floor-agent.mjs).
// Needs root and bird/birdc (Debian bird2). Usage: node --import tsx bench/mesh-reference.ts
// Env: BENCH_MESH_SIZES, BENCH_TIMEOUT_S (per size and implementation, default 180), BENCH_ONLY=bird|floor
// (one of the two), BENCH_SPAWN_BOOST=1 (every implementation's daemons spawned from nice −10: bench/_mesh.ts), BENCH_WITH_TABBY=1, BENCH_BIRD_FLAGS, BENCH_KEEP=1 (keep the temp dir with configs/logs),
// BENCH_SHOW=1 (print node 1's kernel routes and `birdc show protocols` once converged).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Netlink, type NetlinkEvent, type Subscription } from '../netlink/index.js';
import { ensureThreadPool, spawnBoosted, loadAverage, machineCpu, nowMs, pct, pool, procCpuPrecise, procMemory, run, sleep, stopNodes, sweep } from './_mesh.js';

const here = dirname(fileURLToPath(import.meta.url));
const SIZES = (process.env.BENCH_MESH_SIZES ?? '10,25,50,100').split(',').map(Number).filter((n) => n >= 2);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 180) * 1000;
const ONLY = process.env.BENCH_ONLY;
const AS = 64512;
const BGP_PORT = 179;
const POOL = '10.249.0.0/16';
const BIRD_FLAGS = (process.env.BENCH_BIRD_FLAGS ?? '-R -d').split(' ').filter(Boolean);
const progress = (s: string): void => void process.stderr.write(`  … ${s}\n`);
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '–');
const f3 = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '–');
const epochMs = (): number => performance.timeOrigin + performance.now();

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (ONLY !== 'floor') for (const c of ['/usr/sbin/bird', '/usr/sbin/birdc']) if (!existsSync(c)) return `needs ${c} (apt-get install bird2)`;
  return undefined;
}

/** The /26 block k of 10.249.0.0/16. */
const block = (k: number): string => `10.249.${k >> 2}.${(k & 3) * 64}/26`;

interface FabNode {
  i: number;
  ns: string;
  ip: string;
  mac: string;
  dir: string;
  child?: ChildProcess;
  pid?: number;
  /** Kernel unicast routes in this namespace: dst → first seen (nowMs clock). */
  routes: Map<string, number>;
  nl?: Netlink;
  sub?: Subscription;
}

/**
 * N namespaces `<prefix>n<i>` with eth0 on bridge br0 of `<prefix>fab`, addresses 172.<octet>.0.0/16,
 * built with one `ip -batch` for the namespaces, one for the fabric and one per node (which also holds
 * its permanent ARP entries for every other node: the kernel's neighbour table is machine-wide and
 * gc_thresh3 = 1024 would overflow at 50 nodes, see _mesh.ts).
 */
class Fabric {
  readonly nodes: FabNode[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'tabby-meshref-'));
  readonly fab: string;
  private waiters: Array<() => void> = [];
  private destroyed = false;

  constructor(
    readonly prefix: string,
    private readonly octet: number,
    n: number,
  ) {
    this.fab = `${prefix}fab`;
    for (let i = 1; i <= n; i++) {
      const [c, d] = [1 + (i >> 8), i & 255];
      const hex = (x: number): string => x.toString(16).padStart(2, '0');
      this.nodes.push({
        i,
        ns: `${prefix}n${i}`,
        ip: `172.${octet}.${c}.${d}`,
        mac: `02:00:ac:${hex(octet)}:${hex(c)}:${hex(d)}`,
        dir: join(this.dir, `n${i}`),
        routes: new Map(),
      });
    }
  }

  private async batch(name: string, lines: string[], ns?: string): Promise<void> {
    const file = join(this.dir, `${name}.batch`);
    writeFileSync(file, lines.join('\n') + '\n');
    await run('ip', [...(ns ? ['-n', ns] : []), '-batch', file], { timeoutMs: 120000 });
  }

  async build(): Promise<void> {
    await sweep(this.prefix, undefined);
    await this.batch('netns', [this.fab, ...this.nodes.map((m) => m.ns)].map((ns) => `netns add ${ns}`));
    await this.batch(
      'fabric',
      [
        'link set lo up',
        'link add br0 type bridge',
        `addr add 172.${this.octet}.0.2/16 dev br0`,
        'link set br0 up',
        ...this.nodes.flatMap((m) => [`link add v${m.i} type veth peer name eth0 address ${m.mac} netns ${m.ns}`, `link set v${m.i} master br0 up`]),
      ],
      this.fab,
    );
    const neigh = this.nodes.map((m) => `neigh replace ${m.ip} lladdr ${m.mac} dev eth0 nud permanent`);
    await pool(this.nodes, 6, (m) =>
      this.batch(m.ns, ['link set lo up', `addr add ${m.ip}/16 dev eth0`, 'link set eth0 up', ...neigh.filter((l) => !l.includes(` ${m.ip} `))], m.ns),
    );
  }

  /** A netlink route subscription in every node namespace (main table, unicast routes). */
  async watchRoutes(): Promise<void> {
    for (const m of this.nodes) {
      m.nl = Netlink.open({ netns: m.ns });
      m.sub = m.nl.subscribe(['ipv4-route'], (ev: NetlinkEvent) => {
        if (ev.kind !== 'route' || !ev.route.dst || (ev.route.table ?? 254) !== 254) return;
        if (ev.action === 'new' && ev.route.type === 1 && !m.routes.has(ev.route.dst)) m.routes.set(ev.route.dst, nowMs());
        else if (ev.action === 'del') m.routes.delete(ev.route.dst);
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      });
      for (const r of await m.nl.routeList({ family: 2 })) if (r.dst && r.type === 1) m.routes.set(r.dst, nowMs());
    }
  }

  /** Resolves when `done()` holds, checked on every route event; rejects after TIMEOUT_MS. */
  waitRoutes(done: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: not within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
      const check = (): void => {
        if (!done()) return void this.waiters.push(check);
        clearTimeout(timer);
        resolve();
      };
      check();
    });
  }

  /** `cmd` in node m's namespace (exec'd by `ip netns exec`: the child's pid is the daemon's). */
  spawnIn(m: FabNode, cmd: string[], stdout: 'pipe' | 'log', env: NodeJS.ProcessEnv): ChildProcess {
    const fd = openSync(join(this.dir, `n${m.i}.log`), 'a');
    const child = spawn('ip', ['netns', 'exec', m.ns, ...cmd], { stdio: ['ignore', stdout === 'pipe' ? 'pipe' : fd, fd], env });
    closeSync(fd);
    m.child = child;
    if (child.pid !== undefined) m.pid = child.pid;
    child.on('exit', (code, sig) => {
      if (!this.destroyed) process.stderr.write(`${cmd[0]} in ${m.ns} exited (${code ?? sig}): ${this.logTail(m)}\n`);
    });
    return child;
  }

  logTail(m: FabNode): string {
    try {
      return readFileSync(join(this.dir, `n${m.i}.log`), 'utf8').trim().split('\n').slice(-5).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /**
   * The columns every implementation shares, read now (the daemons still running): CPU seconds
   * (cpuSeconds), VmRSS, the machine's CPU since `start`.
   */
  summary(start: { machine: { busy: number; idle: number }; load: string; bench: NodeJS.CpuUsage }): Pick<Row, 'cpuAll' | 'cpuMed' | 'busy' | 'idle' | 'rssMed' | 'rssMax' | 'load' | 'benchCpu'> {
    const m1 = machineCpu();
    const b = process.cpuUsage(start.bench);
    const use: Array<{ cpu: number; rss: number }> = [];
    for (const m of this.nodes) {
      if (m.pid === undefined) continue;
      try {
        use.push({ cpu: procCpuPrecise(m.pid), rss: procMemory(m.pid).rss });
      } catch {
        // exited
      }
    }
    return {
      cpuAll: use.reduce((a, x) => a + x.cpu, 0),
      cpuMed: pct(use.map((x) => x.cpu), 50),
      busy: m1.busy - start.machine.busy,
      idle: m1.idle - start.machine.idle,
      rssMed: pct(use.map((x) => x.rss), 50),
      rssMax: Math.max(...use.map((x) => x.rss)),
      load: `${start.load} → ${loadAverage()}`,
      benchCpu: (b.user + b.system) / 1e6,
    };
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await stopNodes(this.nodes);
    await sweep(this.prefix, undefined);
    if (process.env.BENCH_KEEP) process.stderr.write(`kept configs and logs in ${this.dir} (BENCH_KEEP)\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

let current: Fabric | undefined;
let exiting = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (exiting) return; // Ctrl-C arrives twice (group + the re-exec parent): keep cleaning up
    exiting = true;
    process.stderr.write(`\n${sig}: cleaning up\n`);
    void (current?.destroy() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

/**
 * bird.cfg of node `m` as confd renders it for calico-node (calico.md §5.1–5.3), in BIRD 2 syntax
 * (Calico ships a BIRD 1.6 fork; channel options move into `ipv4 { }`). Left out as not applying
 * here: IPIP/VXLAN tunnels (no-encap pool), communities, BGPPeers, route reflectors, passwords.
 */
function birdConfig(m: { ip: string; i: number }, peers: string[]): string {
  const own = block(m.i);
  const mesh = peers
    .filter((p) => p !== m.ip)
    .map(
      (p) =>
        `protocol bgp Mesh_${p.replace(/\./g, '_')} from bgp_template {\n  neighbor ${p} as ${AS};\n  source address ${m.ip};\n  ttl security off;\n  multihop;\n` +
        // Unidirectional mesh: the peer with the greater IP (string comparison, as confd) is passive.
        (p > m.ip ? '  passive on;\n' : '') +
        '}\n',
    );
  return `# Calico-like bird.cfg (confd template, BIRD 2 syntax) for node ${m.ip}
log stderr { info, remote, warning, error, auth, fatal, bug };
timeformat protocol iso long ms;
router id ${m.ip};

# calico_aggr + calico_export_to_bgp_peers: the confirmed block aggregate, never its /32s; the pool.
filter calico_export_to_bgp_peers {
  if ( net = ${own} ) then accept;
  if ( net ~ ${own} ) then reject;
  if ( net ~ ${POOL} ) then accept;
  reject;
}
# No-encap pool: program what BGP learned as is.
filter calico_kernel_programming {
  accept;
}

protocol kernel {
  learn;
  persist;
  scan time 2;
  graceful restart;
  merge paths on;
  ipv4 { import all; export filter calico_kernel_programming; };
}
protocol device { scan time 2; }
protocol direct {
  ipv4;
  interface -"cali*", -"kube-ipvs*", "*";
}
# bird_aggr.cfg: a blackhole for every block affine to this node.
protocol static {
  ipv4;
  route ${own} blackhole;
}

template bgp bgp_template {
  local as ${AS};
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
  ipv4 {
    gateway recursive;
    add paths on;
    import all;
    export filter calico_export_to_bgp_peers;
  };
}

${mesh.join('')}`;
}

interface Row {
  impl: string;
  n: number;
  /** ms from the first spawn */
  converged: number;
  routes: number;
  sessions: number;
  first: number;
  spawn: number;
  cpuAll: number;
  cpuMed: number;
  /** floor: CPU-s per process until it listened (median) */
  startCpu: number;
  busy: number;
  idle: number;
  rssMed: number;
  rssMax: number;
  load: string;
  /** CPU-s of this process (spawning, route events, birdc polling) over the run */
  benchCpu: number;
  note?: string;
}

/** BIRD's protocol table: Mesh_ sessions of one daemon (name, state, since as epoch ms, info). */
async function birdSessions(ctl: string): Promise<Array<{ name: string; info: string; since: number }>> {
  const out = await run('birdc', ['-s', ctl, 'show', 'protocols'], { timeoutMs: 10000 });
  const rows: Array<{ name: string; info: string; since: number }> = [];
  for (const line of out.split('\n')) {
    const r = /^(Mesh_\S+)\s+BGP\s+\S+\s+\S+\s+(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)\s+(.*)$/.exec(line);
    if (r) rows.push({ name: r[1]!, since: Date.parse(`${r[2]!}T${r[3]!}Z`), info: r[4]!.trim() });
  }
  return rows;
}

async function runBird(n: number): Promise<Row> {
  const fab = new Fabric('tbm-', 28, n);
  current = fab;
  try {
    await fab.build();
    await fab.watchRoutes();
    const peers = fab.nodes.map((m) => m.ip);
    for (const m of fab.nodes) writeFileSync(join(fab.dir, `n${m.i}.conf`), birdConfig(m, peers));
    await run('bird', ['-p', '-c', join(fab.dir, 'n1.conf')]); // parse check, as confd does
    progress(`bird: ${n} namespaces and configs ready; starting ${n} birds`);
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', TZ: 'UTC' };
    const start = { machine: machineCpu(), load: loadAverage(), bench: process.cpuUsage() };
    const t0 = nowMs();
    const t0Epoch = epochMs();
    spawnBoosted((spawned) => {
      for (const m of fab.nodes) spawned(fab.spawnIn(m, ['bird', ...BIRD_FLAGS, '-s', join(fab.dir, `n${m.i}.ctl`), '-c', join(fab.dir, `n${m.i}.conf`)], 'log', env).pid);
    });
    const spawnAll = nowMs() - t0;
    const blocks = fab.nodes.map((m) => block(m.i));
    const complete = (): boolean => fab.nodes.every((m) => blocks.every((b, k) => k === m.i - 1 || m.routes.has(b)));
    await fab.waitRoutes(complete, `bird ${n}-node mesh routes`);
    let last = 0;
    let first = Infinity;
    for (const m of fab.nodes)
      for (const [k, b] of blocks.entries()) {
        if (k === m.i - 1) continue;
        last = Math.max(last, m.routes.get(b)!);
        first = Math.min(first, m.routes.get(b)!);
      }
    progress(`bird: all routes after ${f1(last - t0)} ms; checking sessions`);
    let since = NaN;
    for (let up = -1; up !== n; ) {
      if (nowMs() > t0 + TIMEOUT_MS) throw new Error(`bird ${n}-node mesh: ${up}/${n} daemons with all sessions Established within ${TIMEOUT_MS / 1000} s`);
      let latest = 0;
      up = 0;
      await pool(fab.nodes, 4, async (m) => {
        const s = await birdSessions(join(fab.dir, `n${m.i}.ctl`)).catch(() => []);
        if (s.length === n - 1 && s.every((x) => x.info.startsWith('Established'))) up++;
        for (const x of s) latest = Math.max(latest, x.since);
      });
      since = latest;
      if (up !== n) await sleep(500);
    }
    const summary = fab.summary(start);
    if (process.env.BENCH_SHOW) {
      const m = fab.nodes[0]!;
      console.log(`${m.ns} kernel routes:\n${await run('ip', ['-n', m.ns, 'route'])}${await run('birdc', ['-s', join(fab.dir, 'n1.ctl'), 'show', 'protocols'])}`);
    }
    const routesAt = last - t0;
    const sessionsAt = since - t0Epoch;
    return {
      impl: 'BIRD mesh',
      n,
      converged: Math.max(routesAt, sessionsAt),
      routes: routesAt,
      sessions: sessionsAt,
      first: first - t0,
      spawn: spawnAll,
      startCpu: NaN,
      ...summary,
    };
  } finally {
    await fab.destroy();
    current = undefined;
  }
}

async function runFloor(n: number): Promise<Row> {
  const fab = new Fabric('tbf-', 27, n);
  current = fab;
  try {
    await fab.build();
    const peers = fab.nodes.map((m) => m.ip).join(',');
    const agent = join(here, '_mesh-floor-agent.mjs');
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'UV_THREADPOOL_SIZE']) delete env[k];
    progress(`floor: ${n} namespaces ready; starting ${n} node processes`);
    const stamps = fab.nodes.map(() => ({ ready: NaN, readyCpu: NaN, first: NaN, done: NaN, refused: 0 }));
    let doneCount = 0;
    let wake: () => void = () => undefined;
    const start = { machine: machineCpu(), load: loadAverage(), bench: process.cpuUsage() };
    const t0 = nowMs();
    const t0Epoch = epochMs();
    spawnBoosted((spawned) => {
      for (const [k, m] of fab.nodes.entries()) {
        const child = fab.spawnIn(m, [process.execPath, agent, m.ip, String(BGP_PORT), peers], 'pipe', env);
        spawned(child.pid);
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const [what, t, cpu, refused] = line.split(' ');
          const s = stamps[k]!;
          if (what === 'ready') [s.ready, s.readyCpu] = [Number(t), Number(cpu) / 1000];
          else if (what === 'first') s.first = Number(t);
          else if (what === 'done') {
            [s.done, s.refused] = [Number(t), Number(refused)];
            doneCount++;
            wake();
          }
        });
      }
    });
    const spawnAll = nowMs() - t0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`floor ${n}-node mesh: ${doneCount}/${n} done within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
      wake = () => {
        if (doneCount < n) return;
        clearTimeout(timer);
        resolve();
      };
    });
    const summary = fab.summary(start);
    const converged = Math.max(...stamps.map((s) => s.done)) - t0Epoch;
    return {
      impl: 'Node floor',
      n,
      converged,
      routes: NaN,
      sessions: converged,
      first: Math.min(...stamps.map((s) => s.first)) - t0Epoch,
      spawn: spawnAll,
      startCpu: pct(stamps.map((s) => s.readyCpu), 50),
      note: `${stamps.reduce((a, s) => a + s.refused, 0)} connects refused (peer not listening yet)`,
      ...summary,
    };
  } finally {
    await fab.destroy();
    current = undefined;
  }
}

/** One row of bench/mesh-scale.ts's final table (`| n | conv ms | routes ms | sessions ms | first ms | … |`). */
function parseMeshScaleRow(line: string): Row | undefined {
  const c = line.split('|').map((x) => x.trim());
  if (c.length < 14 || !/^\d+$/.test(c[1] ?? '')) return undefined;
  const num = (s: string | undefined): number => parseFloat(s ?? '');
  const pair = (s: string | undefined): [number, number] => {
    const [a, b] = (s ?? '').split('/');
    return [num(a), num(b)];
  };
  const [rssMed, rssMax] = pair(c[7]);
  const [cpuMed, cpuAll] = pair(c[9]);
  const [busy, idle] = pair(c[12]);
  return {
    impl: 'tabby-node',
    n: Number(c[1]),
    converged: num(c[2]),
    routes: num(c[3]),
    sessions: num(c[4]),
    first: num(c[5]),
    spawn: NaN,
    cpuAll,
    cpuMed,
    startCpu: NaN,
    busy,
    idle,
    rssMed,
    rssMax,
    load: c[13] ?? '',
    benchCpu: num(c[11]),
  };
}

/** bench/mesh-scale.ts for one size, as a child process (its own harness, prefix `tnb-`). */
async function runTabby(n: number): Promise<Row> {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'mesh-scale.ts')], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_MESH_SIZES: String(n), UV_THREADPOOL_SIZE: '' },
    });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => void (text += d));
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`mesh-scale.ts exited with ${code}: ${text.slice(-500)}`))));
  });
  const row = out.split('\n').map(parseMeshScaleRow).find((r) => r?.n === n);
  if (!row) throw new Error(`mesh-scale.ts printed no row for ${n} nodes: ${out.slice(-500)}`);
  return row;
}

const skip = skipReason();
if (skip) {
  console.log(`mesh-reference: skipped (${skip})`);
  process.exit(0);
}
await ensureThreadPool(Math.max(...SIZES) + 16);
await sweep('tbm-', undefined);
await sweep('tbf-', undefined);
console.log(`mesh-reference: sizes ${SIZES.join(',')}, ${new Date().toISOString()}, load ${loadAverage()}, ${(await run('bird', ['--version']).catch((e: Error) => e.message)).trim() || 'bird'}`);
const rows: Row[] = [];
for (const n of SIZES) {
  const size: Row[] = [];
  if (ONLY !== 'floor') size.push(await runBird(n));
  if (ONLY !== 'bird') size.push(await runFloor(n));
  if (process.env.BENCH_WITH_TABBY === '1') size.push(await runTabby(n));
  for (const r of size) {
    console.log(
      `nodes=${n} ${r.impl}: converged ${f1(r.converged)} ms (routes ${f1(r.routes)}, sessions ${f1(r.sessions)}, first ${f1(r.first)}; spawning ${f1(r.spawn)} ms) ` +
        `CPU all ${f2(r.cpuAll)} s, median ${f3(r.cpuMed)} s${Number.isFinite(r.startCpu) ? `, until listening ${f2(r.startCpu)} s` : ''}; ` +
        `bench ${f2(r.benchCpu)} CPU-s; machine busy/idle ${f1(r.busy)}/${f1(r.idle)} CPU-s; VmRSS med/max ${f1(r.rssMed)}/${f1(r.rssMax)} MB; load ${r.load}${r.note ? `; ${r.note}` : ''}`,
    );
  }
  rows.push(...size);
}
if (process.env.BENCH_WITH_TABBY !== '1') console.log('\n(tabby-node row: BENCH_WITH_TABBY=1, or run bench/mesh-scale.ts separately)');
console.log(
  '\n| nodes | implementation | full convergence s | × BIRD | all routes s | all sessions s | first route / session s | spawning N ms | CPU-s all daemons | × BIRD | CPU-s per daemon (median) | bench CPU-s | machine busy / idle CPU-s | VmRSS median / max MB | load before → after |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const bird = rows.find((x) => x.n === r.n && x.impl === 'BIRD mesh');
  const ratio = (a: number, b: number | undefined): string => (b ? `${f2(a / b)}×` : '–');
  console.log(
    `| ${r.n} | ${r.impl} | ${f2(r.converged / 1000)} | ${ratio(r.converged, bird?.converged)} | ${f2(r.routes / 1000)} | ${f2(r.sessions / 1000)} | ${f2(r.first / 1000)} | ${f1(r.spawn)} | ` +
      `${f2(r.cpuAll)} | ${ratio(r.cpuAll, bird?.cpuAll)} | ${f3(r.cpuMed)}${Number.isFinite(r.startCpu) ? ` (${f3(r.startCpu)} until listening)` : ''} | ${f2(r.benchCpu)} | ${f1(r.busy)} / ${f1(r.idle)} | ${f1(r.rssMed)} / ${f1(r.rssMax)} | ${r.load} |`,
  );
}
