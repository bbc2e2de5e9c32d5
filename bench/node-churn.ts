// Benchmark: what pod churn on one node costs the other nodes' agents (issue 6). N agents
// (BENCH_CHURN_NODES, default 10; bench/_mesh.ts harness, etcd datastore, full mesh) converge and
// settle. Then BENCH_CHURN_PODS pods (default 50) are "created" on node 1 as the CNI plugin creates
// them: an IPAM assignment from node 1's block (an IPAMBlock allocation, written through the IPAM
// library) and a WorkloadEndpoint. Then they are deleted again (release + WorkloadEndpoint delete).
// Reported: the N−1 other agents' CPU (schedstat, all threads) during the churn, minus their idle CPU
// (3 s measured just before, scaled to the churn's duration), per pod event and per agent. A tabby-node only needs to
// recompute for another node's pod when its own plan or dataplane view changes (node/relevance.ts).
// BENCH_TABBY_ROOT=<checkout>: run that checkout's agents (before/after).
// Needs root, etcd, `npm run build`. Usage: node --import tsx bench/node-churn.ts
import { Mesh, ETCD_ENDPOINT, createPool, ensureThreadPool, loadAverage, needRootAndEtcd, nowMs, procCpuPrecise, sleep } from './_mesh.js';

const skip = needRootAndEtcd();
if (skip) {
  console.log(`node-churn: skipped (${skip})`);
  process.exit(0);
}
const N = Number(process.env.BENCH_CHURN_NODES ?? 10);
const PODS = Number(process.env.BENCH_CHURN_PODS ?? 50);
await ensureThreadPool(N + 16);

const mesh = new Mesh({ logLevel: 'info' });
try {
  await mesh.setup();
  await createPool();
  await mesh.addNodes(N);
  const blocks = await mesh.claimBlocks();
  mesh.startAgents();
  await mesh.waitRoutes(() => mesh.meshComplete(blocks), 120_000, `${N}-node mesh routes`);
  const end = nowMs() + 120_000;
  for (;;) {
    const s = await mesh.sessions();
    if (s.every((x) => x.established === N - 1)) break;
    if (nowMs() > end) throw new Error(`mesh not Established within 120 s: ${JSON.stringify(s)}`);
    await sleep(300);
  }
  await sleep(3000);
  const [busy, ...others] = mesh.nodes;
  const cpu = (): number => others.reduce((a, m) => a + (m.pid ? procCpuPrecise(m.pid) : 0), 0);

  const { openDatastore } = await import('../datastore/index.js');
  const { Ipam } = await import('../ipam/ipam.js');
  const ds = await openDatastore({ type: 'etcdv3', etcdEndpoints: [ETCD_ENDPOINT] });
  const ipam = new Ipam({ datastore: ds });
  try {
    const wepOf = (i: number, ip: string) => ({
      apiVersion: 'projectcalico.org/v3' as const,
      kind: 'WorkloadEndpoint' as const,
      metadata: { name: `${busy!.name}-k8s-churn${i}-eth0`, namespace: 'default' },
      spec: { node: busy!.name, orchestrator: 'k8s', endpoint: 'eth0', pod: `churn${i}`, interfaceName: `calichurn${i}`, ipNetworks: [`${ip}/32`] },
    });
    // Warm-up (not measured): one pod created and deleted, so the code paths exist in every agent.
    const handle = (i: number): string => `churn-${i}`;
    const warm = await ipam.autoAssign({ num4: 1, handleId: handle(-1), hostname: busy!.name, attrs: { node: busy!.name } });
    await ds.create(wepOf(-1, warm.ipv4[0]!.ip));
    await ds.delete('WorkloadEndpoint', wepOf(-1, '').metadata.name, { namespace: 'default' });
    await ipam.releaseByHandle(handle(-1), busy!.name);
    await sleep(1000);
    // Idle baseline (timers, keepalives, leases), subtracted in proportion to the churn's duration.
    const t0 = nowMs();
    const idle0 = cpu();
    await sleep(3000);
    const idleMs = nowMs() - t0;
    const idleCpu = cpu() - idle0;

    const c0 = cpu();
    const s0 = nowMs();
    for (let i = 0; i < PODS; i++) {
      const a = await ipam.autoAssign({ num4: 1, handleId: handle(i), hostname: busy!.name, attrs: { node: busy!.name } });
      await ds.create(wepOf(i, a.ipv4[0]!.ip));
    }
    for (let i = 0; i < PODS; i++) {
      await ds.delete('WorkloadEndpoint', wepOf(i, '').metadata.name, { namespace: 'default' });
      await ipam.releaseByHandle(handle(i), busy!.name);
    }
    await sleep(1000); // the last events reach the agents and their coalesced recomputes run
    const churnMs = nowMs() - s0;
    const used = cpu() - c0 - (idleCpu * churnMs) / Math.max(1, idleMs);
    const perPodPerAgent = (used * 1000) / (2 * PODS) / others.length;
    console.log(
      `node-churn: ${N} nodes, ${PODS} pods created and deleted on ${busy!.name} in ${(churnMs / 1000).toFixed(1)} s; ` +
        `the ${others.length} other agents used ${used.toFixed(3)} CPU-s above idle: ${perPodPerAgent.toFixed(2)} ms per pod event per agent; load ${loadAverage()}`,
    );
    console.log(`| ${new Date().toISOString().slice(0, 16).replace('T', ' ')} | ${N} | ${PODS} | ${used.toFixed(3)} | ${perPodPerAgent.toFixed(2)} |`);
  } finally {
    await ds.close();
  }
} finally {
  await mesh.destroy();
}
