// Benchmark: BGP full-mesh scale of tabby-node (issue 6). For each size N (default 10,25,50,100;
// `BENCH_MESH_SIZES=10,25` to choose): a fresh etcd + N node namespaces on one bridge (bench/_mesh.ts),
// one /26 block claimed for every node through the IPAM library before any agent runs, then all N
// `bin/tabby-node` agents are started at once.
//
// Full convergence (t=0 = spawn of the first agent) = the later of
//   (1) every node's kernel has a route to every other node's block: N·(N−1) routes, seen through a
//       netlink RTNLGRP_IPV4_ROUTE subscription in each namespace, stamped when the event arrives. felix
//       routes remote blocks from the datastore (IPAMBlock affinities, like Calico's route resolver), so
//       these can appear before the BGP session between the two nodes is up; hence also
//   (2) all N·(N−1)/2 mesh sessions Established: every agent's status socket reports N−1 Established
//       peers (polled every 500 ms); the moment is taken from the agents' logs (the last transition to
//       Established of a session that stayed Established).
// Memory once converged: VmRSS and VmHWM of every agent from /proc (median, max), and the CPU seconds
// (utime+stime) each agent used until then. BENCH_LOG_LEVEL must stay `info` (the default, as deployed):
// (2) reads the session transitions from the logs.
// Needs root, etcd, `npm run build`. Usage: node --import tsx bench/mesh-scale.ts
// Env: BENCH_MESH_SIZES, BENCH_TIMEOUT_S (per size, default 180), BENCH_LOG_LEVEL (agent LOG_LEVEL, default info),
// BENCH_PROFILE_DIR (CPU profiles of BENCH_PROFILE_AGENTS agents, default 5, every BENCH_PROFILE_INTERVAL_US µs),
// BENCH_TABBY_ROOT (another checkout whose built bin/tabby-node the agents run, for before/after), BENCH_IDLE_S
// (after convergence, measure the agents' CPU over this many idle seconds), BENCH_SPAWN_BOOST=1 (spawn the agents from
// nice −10 so they really start at once: bench/_mesh.ts spawnBoosted).
// Targets (issue 6): 100-node mesh ≤ 10 s; RSS ≤ 80 MB per agent.
import { Mesh, ensureThreadPool, machineCpu, loadAverage, needRootAndEtcd, nowMs, createPool, pct, sleep } from './_mesh.js';

const skip = needRootAndEtcd();
if (skip) {
  console.log(`mesh-scale: skipped (${skip})`);
  process.exit(0);
}
const SIZES = (process.env.BENCH_MESH_SIZES ?? '10,25,50,100').split(',').map(Number).filter((n) => n >= 2);
await ensureThreadPool(Math.max(...SIZES) + 16);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 180) * 1000;
const progress = (s: string): void => void process.stderr.write(`  … ${s}\n`);
const f1 = (x: number): string => x.toFixed(1);

interface Row {
  n: number;
  routes: number;
  sessions: number;
  converged: number;
  firstRoute: number;
  spawnAll: number;
  established: string;
  rssMed: number;
  rssMax: number;
  hwmMed: number;
  hwmMax: number;
  cpuMed: number;
  cpuSum: number;
  sysSum: number;
  etcdCpu: number;
  benchCpu: number;
  /** Machine-wide CPU seconds busy / idle from the first spawn to convergence (all processes, kernel). */
  machineBusy: number;
  machineIdle: number;
  load: string;
}

async function runSize(n: number): Promise<Row> {
  const mesh = new Mesh({ logLevel: process.env.BENCH_LOG_LEVEL ?? 'info' });
  try {
    await mesh.setup();
    await createPool();
    await mesh.addNodes(n);
    progress(`${n} namespaces ready`);
    const blocks = await mesh.claimBlocks();
    progress(`${n} blocks claimed; starting agents`);
    const rev0 = (await mesh.etcdWrites()).revision;
    const loadBefore = loadAverage();
    const t0 = nowMs();
    const t0Epoch = Date.now();
    const etcd0 = mesh.etcdCpu();
    const bench0 = process.cpuUsage();
    const machine0 = machineCpu();
    mesh.startAgents();
    const spawnAll = nowMs() - t0;
    await mesh.waitRoutes(() => mesh.meshComplete(blocks), TIMEOUT_MS, `${n}-node mesh routes`);
    let last = 0;
    let first = Infinity;
    for (const m of mesh.nodes) {
      for (const [owner, cidrs] of blocks) {
        if (owner === m.name) continue;
        for (const c of cidrs) {
          const t = m.routes.get(c)!;
          last = Math.max(last, t);
          first = Math.min(first, t);
        }
      }
    }
    const routesAt = last - t0;
    progress(`routes complete after ${f1(routesAt)} ms; waiting for every session to be Established`);
    // Sessions: poll the status sockets until every agent reports n−1 Established peers.
    const deadline = t0 + TIMEOUT_MS;
    let sess = await mesh.sessions();
    while (sess.some((s) => s.established !== n - 1) && nowMs() < deadline) {
      await sleep(500);
      sess = await mesh.sessions();
    }
    const mem = mesh.memory();
    const threads = [...mesh.agentThreads()].sort((a, b) => b[1] - a[1]);
    const etcdCpu = mesh.etcdCpu() - etcd0;
    const bu = process.cpuUsage(bench0);
    const benchCpu = (bu.user + bu.system) / 1e6;
    const machine1 = machineCpu();
    const full = sess.filter((s) => s.established === n - 1).length;
    // The exact moment from the agents' logs: the last transition to Established of the last session.
    const est = [...mesh.establishedAt().values()];
    const sessionsAt = est.every((x) => x !== undefined) ? Math.max(...(est as number[])) - t0Epoch : NaN;
    const row: Row = {
      n,
      routes: routesAt,
      sessions: sessionsAt,
      converged: Math.max(routesAt, sessionsAt),
      spawnAll,
      firstRoute: first - t0,
      established: `${full}/${n}`,
      rssMed: pct(mem.map((x) => x.rss), 50),
      rssMax: Math.max(...mem.map((x) => x.rss)),
      hwmMed: pct(mem.map((x) => x.hwm), 50),
      hwmMax: Math.max(...mem.map((x) => x.hwm)),
      cpuMed: pct(mem.map((x) => x.cpu), 50),
      cpuSum: mem.reduce((a, x) => a + x.cpu, 0),
      sysSum: mem.reduce((a, x) => a + x.sys, 0),
      etcdCpu,
      benchCpu,
      machineBusy: machine1.busy - machine0.busy,
      machineIdle: machine1.idle - machine0.idle,
      load: `${loadBefore} → ${loadAverage()}`,
    };
    const boot = mesh.startupCpu();
    console.log(
      `nodes=${n} agent CPU until "tabby-node started": median ${pct(boot, 50).toFixed(3)} s, all ${f1(boot.reduce((a, x) => a + x, 0))} s of ${f1(mem.reduce((a, x) => a + x.cpu, 0))} s`,
    );
    console.log(`nodes=${n} agent CPU-s by thread: ${threads.map(([k, v]) => `${k} ${f1(v)}`).join(', ')}`);
    const w = await mesh.etcdWrites(rev0);
    console.log(
      `nodes=${n} datastore writes while converging: ${w.revision - rev0} revisions; by key prefix: ` +
        [...w.byKind].map(([k, v]) => `${k} ${v.writes} on ${v.keys} keys`).join(', '),
    );
    // BENCH_IDLE_S: how much CPU the converged agents burn while idle (timers, keepalives, leases).
    const idleS = Number(process.env.BENCH_IDLE_S ?? 0);
    if (idleS > 0) {
      const before = mesh.memory().reduce((a, x) => a + x.cpu, 0);
      await sleep(idleS * 1000);
      const idle = mesh.memory().reduce((a, x) => a + x.cpu, 0) - before;
      console.log(`nodes=${n} idle ${idleS} s after convergence: ${f1(idle)} CPU-s for all agents (${((idle / n / idleS) * 1000).toFixed(1)} ms per agent per second)`);
    }
    console.log(
      `nodes=${n} converged=${f1(row.converged)} ms (all routes ${f1(row.routes)} ms, first ${f1(row.firstRoute)} ms; all sessions Established ${f1(row.sessions)} ms; ` +
        `spawning took ${f1(spawnAll)} ms) agents with ${n - 1}/${n - 1} Established: ${row.established}  VmRSS med/max ${f1(row.rssMed)}/${f1(row.rssMax)} MB  ` +
        `VmHWM med/max ${f1(row.hwmMed)}/${f1(row.hwmMax)} MB  CPU per agent med ${f1(row.cpuMed)} s, all ${f1(row.cpuSum)} s (system ${f1(row.sysSum)} s), etcd ${f1(row.etcdCpu)} s, bench ${f1(row.benchCpu)} s; machine busy/idle ${f1(row.machineBusy)}/${f1(row.machineIdle)} CPU-s  load ${row.load}`,
    );
    return row;
  } finally {
    await mesh.destroy();
  }
}

const rows: Row[] = [];
console.log(`mesh-scale: sizes ${SIZES.join(',')}, ${new Date().toISOString()}, load ${loadAverage()}`);
for (const n of SIZES) rows.push(await runSize(n));
console.log('\n| nodes | full convergence | all routes in every kernel | all sessions Established | first route | agents with all peers Established | VmRSS median / max MB | VmHWM median / max MB | CPU s per agent (median) / all agents | etcd CPU s | bench CPU s | machine busy / idle CPU-s | load avg before → after |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.n} | ${f1(r.converged)} ms | ${f1(r.routes)} ms | ${f1(r.sessions)} ms | ${f1(r.firstRoute)} ms | ${r.established} | ${f1(r.rssMed)} / ${f1(r.rssMax)} | ${f1(r.hwmMed)} / ${f1(r.hwmMax)} | ${f1(r.cpuMed)} / ${f1(r.cpuSum)} | ${f1(r.etcdCpu)} | ${f1(r.benchCpu)} | ${f1(r.machineBusy)} / ${f1(r.machineIdle)} | ${r.load} |`,
  );
}
