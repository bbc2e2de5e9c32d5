// Benchmark (issue 5): one BIRD sender originates N /24 prefixes (`protocol static`); in turn BIRD,
// GoBGP, FRR and tabby-bgp receive them over iBGP in network namespaces (tbb-*). Per receiver:
// time from the receiver reporting the session Established to all N prefixes in its Loc-RIB
// (polled every ~50 ms through each daemon's own CLI / status socket), then, for kernel runs, to
// all N routes in the receiver's kernel; peak RSS (VmHWM; FRR = bgpd + zebra). Ratios against
// BIRD from the same run. Needs root, bird2, gobgpd, frr.
//
//   npm run bench -- bgp                  (N = 100k)
//   npm run bench -- bgp --full  /  BGP_BENCH_N=1000000 npm run bench -- bgp
//   node --import tsx bench/bgp-receive.ts [--full] [--n N] [--only bird,tabby,...] [--base DIR] [--repeat K]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { queryStatus } from '../bgp/ctl.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const argVal = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const N = Number(argVal('--n') ?? (argv.includes('--full') || process.env.BGP_BENCH_FULL ? 1_000_000 : (process.env.BGP_BENCH_N ?? 100_000)));
const ONLY = (argVal('--only') ?? process.env.BGP_BENCH_ONLY)?.split(',');
const TIMEOUT_MS = Number(process.env.BGP_BENCH_TIMEOUT_MS ?? Math.max(60_000, N * 0.3));
const POLL_MS = 50;

// BGP_BENCH_NS_SUFFIX lets a second run (e.g. a profiling run) use its own namespaces.
const SND_NS = `tbb-snd${process.env.BGP_BENCH_NS_SUFFIX ?? ''}`;
const RCV_NS = `tbb-rcv${process.env.BGP_BENCH_NS_SUFFIX ?? ''}`;
const SND_IP = '10.98.1.1';
const RCV_IP = '10.98.1.2';
const AS = 64512;

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
const inNs = (ns: string, cmd: string, args: string[]): string => sh('ip', ['netns', 'exec', ns, cmd, ...args]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const has = (cmd: string): boolean => {
  try {
    sh('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
};

const dir = mkdtempSync(path.join(tmpdir(), 'tbb-bgp-'));
chmodSync(dir, 0o755);
const procs: ChildProcess[] = [];

function killProc(p: ChildProcess): void {
  if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
  try {
    process.kill(-p.pid, 'SIGKILL');
  } catch {
    // gone
  }
}
function delNs(ns: string): void {
  if (!existsSync(`/var/run/netns/${ns}`)) return;
  try {
    sh('ip', ['netns', 'del', ns]);
  } catch {
    // gone
  }
}
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const p of procs) killProc(p);
  delNs(RCV_NS);
  delNs(SND_NS);
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

type Proc = ChildProcess & { output: () => string };
function spawnIn(ns: string, cmd: string, args: string[]): Proc {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: root, detached: true }) as Proc;
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 20_000) out = out.slice(-10_000);
  };
  p.stdout?.on('data', keep);
  p.stderr?.on('data', keep);
  p.output = () => out;
  procs.push(p);
  return p;
}
/** SIGTERM (lets `node --cpu-prof` write its profile), SIGKILL after 3 s. */
async function stop(p: ChildProcess): Promise<void> {
  if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  try {
    process.kill(-p.pid, 'SIGTERM');
  } catch {
    // gone
  }
  const t = setTimeout(() => killProc(p), 3000);
  await exited;
  clearTimeout(t);
}

/** The i-th /24: 100.0.0.0/24, 100.0.1.0/24, … (1M reach 115.x). */
const prefix = (i: number): string => `${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`;

function setupSender(): Proc {
  delNs(SND_NS);
  sh('ip', ['netns', 'add', SND_NS]);
  sh('ip', ['-n', SND_NS, 'link', 'set', 'lo', 'up']);
  const lines: string[] = [];
  for (let i = 0; i < N; i++) lines.push(`route ${prefix(i)} blackhole;`);
  writeFileSync(
    path.join(dir, 'sender.conf'),
    `log stderr { warning, error, fatal };
router id ${SND_IP};
protocol device { scan time 10; }
protocol static { ipv4;
${lines.join('\n')}
}
protocol bgp rcv {
  local ${SND_IP} as ${AS}; neighbor ${RCV_IP} as ${AS}; passive on;
  hold time 240; error wait time 1, 2;
  ipv4 { import none; export where source = RTS_STATIC; };
}
`,
  );
  return spawnIn(SND_NS, 'bird', ['-f', '-c', path.join(dir, 'sender.conf'), '-s', path.join(dir, 'sender.ctl')]);
}

/** A fresh receiver namespace (drops the previous receiver's kernel routes with it). */
function setupReceiverNs(): void {
  // Deleting a namespace destroys its veth asynchronously: remove the sender's end first, or the
  // next `link add … peer name e0` may find the old one still there.
  try {
    sh('ip', ['-n', SND_NS, 'link', 'del', 'e0']);
  } catch {
    // no previous receiver
  }
  delNs(RCV_NS);
  sh('ip', ['netns', 'add', RCV_NS]);
  sh('ip', ['-n', RCV_NS, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', 'e0', 'netns', SND_NS]);
  for (const [ns, ip] of [
    [RCV_NS, RCV_IP],
    [SND_NS, SND_IP],
  ] as const) {
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'e0']);
    sh('ip', ['-n', ns, 'link', 'set', 'e0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
}

/**
 * BIRD 2.0 (seen with 2.0.12) can leave its last export batch unsent until something wakes its
 * main loop (the final ~160–256 routes arrived 0–1.5 s late, for every receiver alike). A CLI
 * connection wakes it: the bench opens one to the sender on every poll, so that sender jitter does
 * not end up in the receivers' times.
 */
function wakeSender(): void {
  const s = net.connect(path.join(dir, 'sender.ctl'));
  s.on('data', () => s.destroy());
  s.on('error', () => s.destroy());
  s.setTimeout(1000, () => s.destroy());
}

interface Poll {
  established: boolean;
  count: number;
}

interface Receiver {
  name: string;
  kernel: boolean;
  /** Kernel route protocol the receiver installs with (for the kernel count). */
  proto?: string;
  need: string[];
  /** Starts the daemon(s) in RCV_NS; returns the pids whose memory counts. */
  start(d: string): Promise<{ procs: Proc[]; poll: () => Promise<Poll> }>;
}

const birdRx = (kernel: boolean): Receiver => ({
  name: kernel ? 'BIRD + kernel' : 'BIRD',
  kernel,
  proto: 'bird',
  need: ['bird', 'birdc'],
  start(d) {
    const ctl = path.join(d, 'bird.ctl');
    writeFileSync(
      path.join(d, 'bird.conf'),
      `log stderr { warning, error, fatal };
router id ${RCV_IP};
protocol device { scan time 10; }
protocol direct { ipv4; interface "e0"; }
protocol kernel { ipv4 { import none; export ${kernel ? 'all' : 'none'}; }; merge paths on; }
protocol bgp snd {
  local ${RCV_IP} as ${AS}; neighbor ${SND_IP} as ${AS};
  hold time 240; connect delay time 0; connect retry time 1;
  ipv4 { import all; export none; };
}
`,
    );
    const p = spawnIn(RCV_NS, 'bird', ['-f', '-c', path.join(d, 'bird.conf'), '-s', ctl]);
    return Promise.resolve({
      procs: [p],
      poll: () => {
        const out = inNs(RCV_NS, 'birdc', ['-s', ctl, 'show', 'protocols', 'all', 'snd']);
        return Promise.resolve({ established: /BGP state:\s+Established/.test(out), count: Number(/Routes:\s+(\d+) imported/.exec(out)?.[1] ?? 0) });
      },
    });
  },
});

const gobgpRx: Receiver = {
  name: 'GoBGP',
  kernel: false,
  need: ['gobgpd', 'gobgp'],
  start(d) {
    writeFileSync(
      path.join(d, 'gobgpd.toml'),
      `[global.config]
  as = ${AS}
  router-id = "${RCV_IP}"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${SND_IP}"
    peer-as = ${AS}
  [neighbors.timers.config]
    hold-time = 240
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`,
    );
    const api = ['-u', '127.0.0.1', '-p', '50051'];
    const p = spawnIn(RCV_NS, 'gobgpd', ['-f', path.join(d, 'gobgpd.toml'), '--api-hosts', '127.0.0.1:50051', '--pprof-disable', '-l', 'warn']);
    return Promise.resolve({
      procs: [p],
      poll: () => {
        // "Peer AS Up/Down State |#Received Accepted"
        const line = inNs(RCV_NS, 'gobgp', [...api, 'neighbor'])
          .split('\n')
          .find((l) => l.trim().startsWith(SND_IP));
        const cols = line?.trim().split(/\s+/) ?? [];
        const bar = cols.indexOf('|');
        return Promise.resolve({ established: cols.includes('Establ'), count: bar >= 0 ? Number(cols[bar + 2] ?? 0) : 0 });
      },
    });
  },
};

const frrRx = (kernel: boolean): Receiver => ({
  name: kernel ? 'FRR + kernel' : 'FRR',
  kernel,
  proto: 'bgp',
  need: ['/usr/lib/frr/bgpd', '/usr/lib/frr/zebra', 'vtysh'],
  async start(d) {
    const frr = path.join(d, 'frr');
    mkdirSync(frr);
    sh('chown', ['frr:frr', frr]);
    writeFileSync(path.join(frr, 'zebra.conf'), 'hostname r-rcv\n');
    writeFileSync(
      path.join(frr, 'bgpd.conf'),
      `frr defaults traditional
hostname r-rcv
router bgp ${AS}
 bgp router-id ${RCV_IP}
 no bgp ebgp-requires-policy
 neighbor ${SND_IP} remote-as ${AS}
 neighbor ${SND_IP} timers 80 240
 neighbor ${SND_IP} timers connect 1
`,
    );
    const z = ['--vty_socket', frr, '-z', path.join(frr, 'zserv.api')];
    const zebra = spawnIn(RCV_NS, '/usr/lib/frr/zebra', ['-f', path.join(frr, 'zebra.conf'), ...z, '-i', path.join(frr, 'zebra.pid')]);
    for (let i = 0; i < 200 && !existsSync(path.join(frr, 'zserv.api')); i++) await sleep(50);
    const bgpd = spawnIn(RCV_NS, '/usr/lib/frr/bgpd', ['-S', '-f', path.join(frr, 'bgpd.conf'), ...z, '-i', path.join(frr, 'bgpd.pid'), '-p', '0', ...(kernel ? [] : ['-n'])]);
    return {
      procs: [bgpd, zebra],
      poll: () => {
        const j = JSON.parse(inNs(RCV_NS, 'vtysh', ['--vty_socket', frr, '-c', 'show bgp summary json'])) as { ipv4Unicast?: { peers?: Record<string, { state?: string; pfxRcd?: number }> } };
        const peer = j.ipv4Unicast?.peers?.[SND_IP];
        return Promise.resolve({ established: peer?.state === 'Established', count: peer?.pfxRcd ?? 0 });
      },
    };
  },
});

/** tabby-bgp from `tabbyRoot` (another checkout, e.g. a baseline worktree, with `dist/` built). */
const tabbyRx = (kernel: boolean, tabbyRoot = root, label = 'tabby', nodeArgs = process.env.TABBY_BENCH_NODE_ARGS ?? ''): Receiver => ({
  name: kernel ? `${label} + kernel` : label,
  kernel,
  proto: '80',
  need: [],
  start(d) {
    const sock = path.join(d, 'tabby.sock');
    const cfg = path.join(d, 'tabby-bgp.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        routerId: RCV_IP,
        asNumber: AS,
        listen: { port: 0 },
        peers: [{ address: SND_IP, asNumber: AS, holdTime: 240, connectRetryTime: 1 }],
        fib: { install: kernel, protocol: 80 },
        statusSocket: sock,
      }),
    );
    const p = spawnIn(RCV_NS, process.execPath, [...nodeArgs.split(' ').filter(Boolean), path.join(tabbyRoot, 'bin/tabby-bgp'), '-c', cfg]);
    return Promise.resolve({
      procs: [p],
      poll: async () => {
        const s = await queryStatus(sock, 30_000);
        const peer = s.peers[0];
        return { established: peer?.state === 'Established', count: peer?.prefixes.accepted ?? 0 };
      },
    });
  },
});

function memKb(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number {
  if (pid === undefined) return 0;
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a process has used so far (clock ticks of 1/100 s). */
function cpuSec(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

function kernelCount(proto: string): number {
  return inNs(RCV_NS, 'ip', ['-4', 'route', 'show', 'table', 'main', 'proto', proto]).split('\n').filter(Boolean).length;
}

interface Result {
  name: string;
  kernel: boolean;
  ribMs?: number;
  /** CPU seconds the receiver used from Established to N in its Loc-RIB (load-independent). */
  ribCpu?: number;
  kernelMs?: number;
  hwmKb: number;
  rssKb: number;
  error?: string;
}

async function runOne(rx: Receiver, i: number): Promise<Result> {
  const d = path.join(dir, `rx${i}`);
  mkdirSync(d);
  chmodSync(d, 0o755);
  setupReceiverNs();
  const { procs: ps, poll } = await rx.start(d);
  const res: Result = { name: rx.name, kernel: rx.kernel, hwmKb: 0, rssKb: 0 };
  const end = Date.now() + TIMEOUT_MS;
  let tEst: number | undefined;
  let cpuEst = 0;
  let last: Poll = { established: false, count: 0 };
  try {
    for (;;) {
      const t = performance.now();
      wakeSender();
      try {
        last = await poll();
      } catch {
        // not up yet
      }
      const now = performance.now();
      if (process.env.BGP_BENCH_TRACE) console.log(`  ${rx.name} poll at ${Math.round(t)} (${Math.round(now - t)} ms): established=${last.established} count=${last.count}`);
      // A poll answered late (daemon busy) counts at the time it was asked, like the others.
      if (last.established && tEst === undefined) {
        tEst = t;
        cpuEst = ps.reduce((sum, p) => sum + cpuSec(p.pid), 0);
      }
      if (tEst !== undefined && last.count >= N) {
        res.ribMs = t - tEst;
        res.ribCpu = ps.reduce((sum, p) => sum + cpuSec(p.pid), 0) - cpuEst;
        break;
      }
      for (const p of ps) if (p.exitCode !== null) throw new Error(`${rx.name} exited (${p.exitCode}): ${p.output().slice(-800)}`);
      if (Date.now() > end) throw new Error(`timeout: established=${last.established} count=${last.count}/${N}`);
      await sleep(Math.max(0, POLL_MS - (now - t)));
    }
    if (rx.kernel && rx.proto && tEst !== undefined) {
      for (;;) {
        const t = performance.now();
        if (kernelCount(rx.proto) >= N) {
          res.kernelMs = t - tEst;
          break;
        }
        if (Date.now() > end) throw new Error(`timeout waiting for ${N} kernel routes`);
        await sleep(200);
      }
    }
    // Let the receiver settle (deferred work, GC) before reading memory.
    await sleep(1000);
  } catch (err) {
    res.error = (err as Error).message.split('\n')[0];
    for (const p of ps) console.error(`--- ${rx.name} output:\n${p.output().slice(-1500)}`);
  }
  res.hwmKb = ps.reduce((s, p) => s + memKb(p.pid, 'VmHWM'), 0);
  res.rssKb = ps.reduce((s, p) => s + memKb(p.pid, 'VmRSS'), 0);
  for (const p of ps) await stop(p);
  return res;
}

function table(results: Result[]): string {
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  const rows = [['receiver', 'Established → N in Loc-RIB', '× BIRD', 'CPU s', '× BIRD', '→ N in kernel', '× BIRD', 'peak RSS MB', '× BIRD', 'RSS at end MB']];
  for (const r of results) {
    const base = results.find((b) => b.name.startsWith('BIRD') && b.kernel === r.kernel && !b.error);
    const ratio = (a?: number, b?: number) => (a !== undefined && b ? (a / b).toFixed(2) : '–');
    const ms = (v?: number) => (v === undefined ? (r.error ? 'FAILED' : '–') : `${Math.round(v)} ms`);
    rows.push([r.name, ms(r.ribMs), ratio(r.ribMs, base?.ribMs), r.ribCpu === undefined ? '–' : r.ribCpu.toFixed(2), ratio(r.ribCpu, base?.ribCpu), r.kernel ? ms(r.kernelMs) : '–', r.kernel ? ratio(r.kernelMs, base?.kernelMs) : '–', mb(r.hwmKb), ratio(r.hwmKb, base?.hwmKb), mb(r.rssKb)]);
  }
  return rows.map((r, i) => `| ${r.join(' | ')} |${i === 0 ? `\n|${r.map(() => '---').join('|')}|` : ''}`).join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('bgp-receive bench: skipped, needs root (network namespaces)');
    return;
  }
  if (!has('bird') || !has('birdc')) {
    console.log('bgp-receive bench: skipped, needs bird2 (bird, birdc)');
    return;
  }
  // Always rebuild: a stale bundle would measure old code.
  sh(process.execPath, [path.join(root, 'scripts/build.mjs')]);
  // BGP_BENCH_BASE=DIR (or --base DIR): also run the tabby-bgp of another checkout ("tabby@base"),
  // interleaved with this one against the same sender, for before/after comparisons.
  const base = argVal('--base') ?? process.env.BGP_BENCH_BASE;
  // BGP_BENCH_TABBY_FLAGS="a=--flag1 --flag2|b=--flag3": also run this tabby with those node flags ("tabby a", …).
  const variants = (process.env.BGP_BENCH_TABBY_FLAGS ?? '').split('|').filter(Boolean).map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)] as const);
  const tabbys = (kernel: boolean): Receiver[] => [
    ...(base ? [tabbyRx(kernel, path.resolve(base), 'tabby@base')] : []),
    tabbyRx(kernel),
    ...variants.map(([label, flags]) => tabbyRx(kernel, root, `tabby ${label}`, flags)),
  ];
  const all: Receiver[] = [birdRx(false), gobgpRx, frrRx(false), ...tabbys(false), birdRx(true), frrRx(true), ...tabbys(true)];
  const selected = all.filter((r) => !ONLY || ONLY.some((o) => r.name.toLowerCase().replace(/ \+ /, '+') === o.toLowerCase()));
  // --repeat K: the selected receivers K times in turn (interleaved, so load drifts hit all alike).
  const receivers = Array.from({ length: Number(argVal('--repeat') ?? 1) }, () => selected).flat();
  console.log(`bgp-receive: N = ${N} /24 prefixes from one BIRD sender over iBGP; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${new Date().toISOString()}`);
  const sender = setupSender();
  setupReceiverNs();
  // Wait until the sender has all static routes in its table.
  const t0 = Date.now();
  for (;;) {
    try {
      const out = inNs(SND_NS, 'birdc', ['-s', path.join(dir, 'sender.ctl'), 'show', 'route', 'count']);
      if (Number(/(\d+) of \d+ routes/.exec(out)?.[1] ?? 0) >= N) break;
    } catch {
      // not up yet
    }
    if (sender.exitCode !== null) throw new Error(`sender BIRD exited: ${sender.output()}`);
    if (Date.now() - t0 > 300_000) throw new Error('sender BIRD did not load its routes in 300 s');
    await sleep(200);
  }
  console.log(`sender BIRD loaded ${N} routes in ${Date.now() - t0} ms`);
  const results: Result[] = [];
  let i = 0;
  for (const rx of receivers) {
    const missing = rx.need.filter((c) => !(c.startsWith('/') ? existsSync(c) : has(c)));
    if (missing.length > 0) {
      console.log(`${rx.name}: skipped, missing ${missing.join(', ')}`);
      continue;
    }
    const r = await runOne(rx, i++);
    console.log(`${r.name}: ${r.error ? `FAILED ${r.error}` : `${Math.round(r.ribMs ?? 0)} ms to Loc-RIB (CPU ${r.ribCpu?.toFixed(2)} s)${r.kernelMs !== undefined ? `, ${Math.round(r.kernelMs)} ms to kernel` : ''}`}, peak RSS ${(r.hwmKb / 1024).toFixed(1)} MB (load ${loadavg()[0]!.toFixed(1)})`);
    results.push(r);
  }
  console.log(`\nN = ${N}, poll every ${POLL_MS} ms; load average at end ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  console.log(table(results));
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(cleanup);
