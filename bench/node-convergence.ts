// Benchmark: block convergence of tabby-node (issue 6). N node namespaces (default 6, BENCH_NODES=5..10)
// on one bridge, each running the real `bin/tabby-node` against one etcd, BGP full mesh (bench/_mesh.ts).
// Once the mesh is up (every agent reports N−1 Established peers), 50 times (BENCH_CLAIMS): a new /26
// block is claimed for node A through the IPAM library in this process, with A's identity (assignIp of
// the block's first address: pending affinity → block → confirmed affinity), and the clock runs from the
// moment etcd acknowledged the write that confirmed the affinity until the RTM_NEWROUTE for that block
// arrives from node B's kernel (netlink RTNLGRP_IPV4_ROUTE subscription in B's namespace, no polling).
// A and B rotate over the nodes (claim i: A = node i mod N, B = node i+1 mod N); "all" = until every
// other node's kernel has the route. One claim at a time, 100 ms apart.
// felix routes remote blocks straight from the datastore (IPAMBlock affinity, as Calico's route
// resolver), so the kernel route in B usually comes from B's own datastore watch, not from BGP (it can
// even precede the confirmation: the block object already names A in the claim's second phase, which
// makes some samples negative). The BGP export path is timed separately: a passive iBGP observer
// speaker in this process (a global BGPPeer, like a ToR) stamps when A's UPDATE for the block arrives.
// Needs root, etcd, `npm run build`. Usage: node --import tsx bench/node-convergence.ts
// Target (issue 6): p50 ≤ 100 ms.
import { Mesh, blockCidr, createPool, ensureThreadPool, loadAverage, needRootAndEtcd, nowMs, openClaimer, pct, sleep, startObserver } from './_mesh.js';

const skip = needRootAndEtcd();
if (skip) {
  console.log(`node-convergence: skipped (${skip})`);
  process.exit(0);
}
const N = Math.max(2, Number(process.env.BENCH_NODES ?? 6));
const CLAIMS = Number(process.env.BENCH_CLAIMS ?? 50);
await ensureThreadPool(N + 16);
const f1 = (x: number): string => x.toFixed(1);
const progress = (s: string): void => void process.stderr.write(`  … ${s}\n`);

const mesh = new Mesh({ logLevel: process.env.BENCH_LOG_LEVEL ?? 'info' });
try {
  console.log(`node-convergence: ${N} nodes, ${CLAIMS} claims, ${new Date().toISOString()}, load ${loadAverage()}`);
  await mesh.setup();
  await createPool();
  await mesh.addNodes(N);
  const observer = await startObserver(mesh.nodes);
  mesh.startAgents();
  const t0 = nowMs();
  const end = t0 + 120_000;
  for (;;) {
    const s = await mesh.sessions();
    // N − 1 mesh peers + the observer.
    if (s.every((x) => x.established === N) && observer.established() === N) break;
    if (nowMs() > end) throw new Error(`mesh not Established within 120 s: ${JSON.stringify(s)}`);
    await sleep(250);
  }
  progress(`mesh of ${N} Established after ${f1(nowMs() - t0)} ms`);
  await sleep(1000);
  const claimer = await openClaimer();
  const toB: number[] = [];
  const toAll: number[] = [];
  const toBgp: number[] = [];
  const fromStart: number[] = [];
  const claimMs: number[] = [];
  try {
    for (let i = 0; i < CLAIMS; i++) {
      const a = mesh.nodes[i % N]!;
      const b = mesh.nodes[(i + 1) % N]!;
      const cidr = blockCidr(100 + i);
      const others = mesh.nodes.filter((m) => m !== a);
      const started = nowMs();
      const confirmed = await claimer.claim(a.name, cidr);
      claimMs.push(confirmed - started);
      await mesh.waitRoutes(() => b.routes.has(cidr), 10_000, `route ${cidr} (claimed by ${a.name}) in ${b.name}`);
      toB.push(b.routes.get(cidr)! - confirmed);
      await mesh.waitRoutes(() => others.every((m) => m.routes.has(cidr)), 10_000, `route ${cidr} in every other node`);
      toAll.push(Math.max(...others.map((m) => m.routes.get(cidr)!)) - confirmed);
      fromStart.push(b.routes.get(cidr)! - started);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no UPDATE for ${cidr} at the observer within 10 s`)), 10_000);
        const check = (): void => {
          if (observer.seen.has(cidr)) {
            clearTimeout(timer);
            resolve();
          } else observer.onChange(check);
        };
        check();
      });
      const up = observer.seen.get(cidr)!;
      if (up.from !== a.ip) throw new Error(`observer learned ${cidr} from ${up.from}, expected ${a.ip}`);
      toBgp.push(up.time - confirmed);
      await sleep(100);
    }
  } finally {
    await claimer.close();
    await observer.close();
  }
  const line = (name: string, xs: number[]): string => `${name}: p50=${f1(pct(xs, 50))} ms p99=${f1(pct(xs, 99))} ms min=${f1(Math.min(...xs))} max=${f1(Math.max(...xs))}`;
  console.log(line(`confirmed affinity on A → route in B's kernel (${CLAIMS} claims)`, toB));
  console.log(line(`confirmed affinity on A → route in all ${N - 1} other kernels`, toAll));
  console.log(line(`claim start (first write) → route in B's kernel`, fromStart));
  console.log(line(`confirmed affinity on A → A's BGP UPDATE at the iBGP observer`, toBgp));
  console.log(line('IPAM claim (start → affinity confirmed)', claimMs));
  const mem = mesh.memory();
  console.log(`agents: VmRSS median ${f1(pct(mem.map((x) => x.rss), 50))} MB, VmHWM max ${f1(Math.max(...mem.map((x) => x.hwm)))} MB; load ${loadAverage()}`);
  const c = (xs: number[]): string => `${f1(pct(xs, 50))} / ${f1(pct(xs, 99))} ms`;
  console.log(`\n| nodes | claims | → B's kernel p50 / p99 | → all kernels p50 / p99 | claim start → B p50 / p99 | → BGP UPDATE at observer p50 / p99 | load avg after |`);
  console.log('|---|---|---|---|---|---|---|');
  console.log(`| ${N} | ${CLAIMS} | ${c(toB)} | ${c(toAll)} | ${c(fromStart)} | ${c(toBgp)} | ${loadAverage()} |`);
} finally {
  await mesh.destroy();
}
