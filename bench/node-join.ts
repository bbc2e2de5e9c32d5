// Benchmark: the cost of one tabby-node joining a converged full mesh (issue 6), without the other
// agents' start-up competing for the CPU. For each size N (BENCH_JOIN_SIZES, default 10,50):
// N−1 agents start and converge (bench/_mesh.ts harness: prefix tnb-, etcd 23920), the machine settles,
// then the N-th agent starts alone. Reported for the joiner: wall time until its kernel has the N−1
// other blocks and it has N−1 Established sessions, its CPU at "tabby-node started" and at that
// moment; and the CPU the N−1 others spent on the newcomer (one peer each).
// (CPU at N=50 − CPU at N=10) / 40 is the joiner's work per peer; the others' sum / (N−1) the far side's.
// BENCH_PROFILE_JOIN=<dir>: the joiner runs with --cpu-prof into <dir> (written when it stops);
// BENCH_PROFILE_OTHERS=<dir> profiles the N−1 others.
// Needs root, etcd, `npm run build`. Usage: node --import tsx bench/node-join.ts
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Mesh, createPool, ensureThreadPool, loadAverage, needRootAndEtcd, nowMs, procCpuByThread, procCpuPrecise as procCpu, procCpuSplit, sleep } from './_mesh.js';

const skip = needRootAndEtcd();
if (skip) {
  console.log(`node-join: skipped (${skip})`);
  process.exit(0);
}
const SIZES = (process.env.BENCH_JOIN_SIZES ?? '10,50').split(',').map(Number).filter((n) => n >= 2);
await ensureThreadPool(Math.max(...SIZES) + 16);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 180) * 1000;
const progress = (s: string): void => void process.stderr.write(`  … ${s}\n`);

async function waitFor(what: string, ok: () => Promise<boolean> | boolean, timeoutMs = TIMEOUT_MS, everyMs = 100): Promise<void> {
  const end = nowMs() + timeoutMs;
  while (!(await ok())) {
    if (nowMs() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(everyMs);
  }
}

interface Row {
  n: number;
  joinMs: number;
  startCpu: number;
  cpu: number;
  othersCpu: number;
  load: string;
}

async function runSize(n: number): Promise<Row> {
  const mesh = new Mesh({ logLevel: 'info' });
  try {
    await mesh.setup();
    await createPool();
    await mesh.addNodes(n);
    const blocks = await mesh.claimBlocks();
    const first = mesh.nodes.slice(0, n - 1);
    const joiner = mesh.nodes[n - 1]!;
    // BENCH_PROFILE_OTHERS=<dir>: the first N−1 agents run with --cpu-prof (the join starts at the
    // printed monotonic time, in the profiles' clock: select samples after it).
    const othersDir = process.env.BENCH_PROFILE_OTHERS;
    // BENCH_PROFILE_OTHERS_COUNT=k profiles only the first k of them (finer intervals stay cheap).
    const profiled = Number(process.env.BENCH_PROFILE_OTHERS_COUNT ?? first.length);
    if (othersDir) process.env.BENCH_PROFILE_INTERVAL_US ??= profiled >= 10 ? '2000' : '200'; // 49 profilers at 500 µs cost more than the agents
    if (othersDir) {
      mesh.startAgents(first.slice(0, profiled), { profileDir: othersDir });
      mesh.startAgents(first.slice(profiled));
    } else {
      mesh.startAgents(first);
    }
    const firstBlocks = new Map([...blocks].filter(([name]) => name !== joiner.name));
    const routesAmong = (nodes: typeof first, bl: Map<string, string[]>): boolean =>
      nodes.every((m) => [...bl].every(([owner, cidrs]) => owner === m.name || cidrs.every((c) => m.routes.has(c))));
    await waitFor(`${n - 1} agents' routes`, () => routesAmong(first, firstBlocks));
    await waitFor(`${n - 1} agents' sessions`, async () => (await mesh.sessions()).filter((s) => s.node !== joiner.name).every((s) => s.established === n - 2), TIMEOUT_MS, 500);
    progress(`${n - 1} agents converged; settling`);
    await sleep(3000);
    const others0 = first.reduce((a, m) => a + procCpu(m.pid!), 0);
    const byThread = (): Map<string, number> => {
      const t = new Map<string, number>();
      for (const m of first) for (const [k, v] of procCpuByThread(m.pid!)) t.set(k, (t.get(k) ?? 0) + v);
      return t;
    };
    const threads0 = byThread();
    const split = (): { user: number; sys: number } => first.reduce((a, m) => { const c = procCpuSplit(m.pid!); return { user: a.user + c.user, sys: a.sys + c.sys }; }, { user: 0, sys: 0 });
    const split0 = split();
    const switches = (): number => first.reduce((a, m) => {
      let n = 0;
      for (const tid of readdirSync(`/proc/${m.pid!}/task`)) {
        try {
          const st = readFileSync(`/proc/${m.pid!}/task/${tid}/status`, 'utf8');
          n += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
        } catch {
          // ended
        }
      }
      return a + n;
    }, 0);
    const sw0 = switches();
    const load = loadAverage();
    const t0 = nowMs();
    if (othersDir) console.log(`nodes=${n} join starts at monotonic ${Math.round(t0 * 1000)} µs`);
    const profileDir = process.env.BENCH_PROFILE_JOIN;
    // BENCH_PERF=<file>: `perf record -a` (whole machine, 4 kHz) during the join, for native/kernel time.
    const perfOut = process.env.BENCH_PERF;
    const perf = perfOut ? spawn('perf', ['record', '-a', '-g', '-F', '4000', '-o', perfOut, '--', 'sleep', '30'], { stdio: 'ignore' }) : undefined;
    if (perf) await sleep(300);
    mesh.startAgents([joiner], profileDir ? { profileDir } : {});
    await waitFor('the joiner’s routes', () => routesAmong([joiner], blocks), TIMEOUT_MS, 20);
    // Only the joiner's status socket is polled (each status read costs the agent a snapshot).
    await waitFor('the joiner’s sessions', async () => (await mesh.sessions([joiner])).every((s) => s.established === n - 1), TIMEOUT_MS, 50);
    const joinMs = nowMs() - t0;
    if (perf) {
      perf.kill('SIGINT');
      await new Promise((r) => perf.once('exit', r));
    }
    if (othersDir) console.log(`nodes=${n} joined at monotonic ${Math.round(nowMs() * 1000)} µs`);
    const cpu = procCpu(joiner.pid!);
    const othersCpu = first.reduce((a, m) => a + procCpu(m.pid!), 0) - others0;
    const threads = [...byThread()].map(([k, v]) => [k, v - (threads0.get(k) ?? 0)] as const).filter(([, v]) => v > 0.0005);
    const split1 = split();
    console.log(`nodes=${n} the others' voluntary context switches: ${switches() - sw0}`);
    console.log(`nodes=${n} the others' CPU in ticks: user ${((split1.user - split0.user) * 1000).toFixed(0)} ms, system ${((split1.sys - split0.sys) * 1000).toFixed(0)} ms`);
    console.log(`nodes=${n} the others' CPU by thread: ${threads.map(([k, v]) => `${k} ${(v * 1000).toFixed(0)} ms`).join(', ')}`);
    const startCpu = mesh.startupCpu().at(-1) ?? NaN;
    const others = await mesh.sessions(first);
    if (!others.every((s) => s.established === n - 1)) throw new Error(`not every agent has ${n - 1} Established sessions: ${JSON.stringify(others.filter((s) => s.established !== n - 1))}`);
    return { n, joinMs, startCpu, cpu, othersCpu, load };
  } finally {
    await mesh.destroy();
  }
}

console.log(`node-join: sizes ${SIZES.join(',')}, ${new Date().toISOString()}, load ${loadAverage()}`);
const rows: Row[] = [];
for (const n of SIZES) {
  const r = await runSize(n);
  rows.push(r);
  console.log(
    `nodes=${n} join ${r.joinMs.toFixed(0)} ms; joiner CPU ${r.startCpu.toFixed(3)} s at "started", ${r.cpu.toFixed(3)} s converged; ` +
      `the ${n - 1} others ${r.othersCpu.toFixed(3)} s (${((r.othersCpu / (n - 1)) * 1000).toFixed(1)} ms each); load ${r.load}`,
  );
}
if (rows.length >= 2) {
  const a = rows[0]!;
  const b = rows.at(-1)!;
  const per = ((b.cpu - a.cpu) / (b.n - a.n)) * 1000;
  console.log(`per extra peer: joiner ${per.toFixed(2)} ms CPU (from ${a.n} to ${b.n} nodes)`);
}
