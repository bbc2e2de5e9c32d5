/**
 * End-to-end dual stack (issue 6, IPv6): the cluster harness with `ipv6: true` — IPv6 on the fabric,
 * IP6 on every tabby-node, the default IPv6 pool from CALICO_IPV6POOL_CIDR, pods with IPv4 + IPv6
 * addresses through the real CNI plugin, an IPv6 BGP session from every node to the BIRD ToR.
 * Checks: IPv6 mesh Established, BIRD holds every IPv6 block, /128 workload routes, IPv6 blackholes
 * for own blocks, remote IPv6 blocks via the owner's IPv6 address (repaired when deleted by hand),
 * ping and ping -6 across nodes (also while one tabby-node is killed -9, and after its restart),
 * ip6 NAT outgoing once the IPv6 pool's natOutgoing is switched on.
 * Namespace prefix t6-, subnets 172.31.248.0/24 + 172.31.249.0/24 and fd00:7ab:0:a::/64, etcd on 23930.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { binAvailable, birdc, startNode } from '../../cluster/daemons.js';
import type { ClusterOptions, NodePlan, Plan, PodPlan } from '../../cluster/plan.js';
import { birdProtocolName6, defaultOptions } from '../../cluster/plan.js';
import { gatherPods, pingMatrix, tabbyctl } from '../../cluster/report.js';
import { readState, repoRoot, writeState } from '../../cluster/state.js';
import { childEnv, inNs, linkExists, listNetns, procAlive, run, sleep } from '../../cluster/sys.js';
import { clusterDown, clusterUp } from '../../cluster/up.js';
import { probeLinkType } from '../../cluster/topology.js';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';

const PREFIX = 't6-';
const ROOT = repoRoot();
const POOL6 = 'fd00:10:244::/48';

function missing(): string | undefined {
  return firstReason(needRoot(), needCommand('bird', 'bird2'), needCommand('birdc', 'bird2'), needCommand('etcd', 'etcd-server'), needCommand('etcdctl', 'etcd-client'), needCommand('nft', 'nftables'));
}

/** Network namespaces here support IPv6 unless the kernel has it disabled. */
async function ipv6Missing(): Promise<string | undefined> {
  const r = await run('sh', ['-c', 'cat /proc/sys/net/ipv6/conf/default/disable_ipv6']);
  if (r.code !== 0) return 'kernel without IPv6 (/proc/sys/net/ipv6 missing)';
  return undefined;
}

const quietIo = (log: string[]): { out: (l: string) => void; err: (l: string) => void } => ({ out: (l) => log.push(l), err: (l) => log.push(l) });

function leftovers(): string[] {
  const left = listNetns(PREFIX);
  if (linkExists(`${PREFIX}host`)) left.push(`link ${PREFIX}host`);
  return left;
}

/** The pod's global IPv6 address on eth0 ('' when none). */
async function podIp6(pod: PodPlan): Promise<string> {
  const r = await run('ip', ['-n', pod.netns, '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
  return /inet6 ([0-9a-f:]+)\/128/.exec(r.stdout)?.[1] ?? '';
}

async function routes6(n: NodePlan, extra: string[] = []): Promise<string[]> {
  return (await run('ip', ['-n', n.netns, '-6', 'route', 'show', ...extra])).stdout.split('\n').filter((l) => l.trim() !== '');
}

/** This node's IPv6 blackholes (= its confirmed IPv6 blocks). */
async function blackholes6(n: NodePlan): Promise<string[]> {
  return (await routes6(n, ['type', 'blackhole'])).map((l) => /^blackhole (\S+)/.exec(l)?.[1] ?? '').filter((c) => c.startsWith('fd00:10:244:'));
}

/** Build, bring a dual-stack cluster up (down + leftover check in t.after); undefined = skipped. */
async function upDual(t: TestContext, over: Partial<ClusterOptions>): Promise<Plan | undefined> {
  const why = firstReason(missing(), await ipv6Missing());
  if (why !== undefined) {
    t.skip(why);
    return undefined;
  }
  assert.deepEqual(leftovers(), [], 'leftovers from an earlier run');
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { stdio: 'ignore', env: childEnv() });
  for (const b of ['tabby-node', 'tabby', 'tabby-ipam']) {
    const a = binAvailable(ROOT, b);
    if (!a.ok) {
      t.skip(a.why ?? `${b} missing`);
      return undefined;
    }
  }
  const stateDir = await mkdtemp(join(tmpdir(), 't6-state-'));
  const o = defaultOptions({
    prefix: PREFIX,
    subnetA: '172.31.248',
    subnetB: '172.31.249',
    stateDir,
    nodes: 3,
    podsPerNode: 2,
    encap: 'none',
    ipv6: true,
    podCidr6: POOL6,
    etcdClientPort: 23930,
    etcdPeerPort: 23931,
    healthPort: 23932,
    metricsPort: 23933,
    ...over,
  });
  const log: string[] = [];
  t.after(async () => {
    await clusterDown(PREFIX, stateDir, quietIo(log));
    assert.deepEqual(leftovers(), [], 'down leaves nothing behind');
  });
  let r;
  try {
    r = await clusterUp(o, quietIo(log), { report: false, root: ROOT, convergeTimeoutMs: 90000 });
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${log.join('\n')}`, { cause: e });
  }
  assert.equal(r.nodesRunning, true);
  assert.equal(r.podsCreated, true);
  return r.plan;
}

/** Every pod pinged from every pod on another node, IPv4 and IPv6; returns the failures. */
async function crossNodePings(plan: Plan): Promise<string[]> {
  const pods = plan.nodes.flatMap((n) => n.pods);
  const cells = await pingMatrix(await gatherPods(plan));
  const v6 = await Promise.all(pods.map(podIp6));
  const failed: string[] = [];
  for (const [i, a] of pods.entries()) {
    for (const [j, b] of pods.entries()) {
      if (a.node === b.node) continue;
      if (cells[i]?.[j]?.ok !== true) failed.push(`${a.name}→${b.name} (v4)`);
      let ok = false;
      for (let attempt = 0; attempt < 2 && !ok; attempt++) ok = (await run('ip', ['netns', 'exec', a.netns, 'ping', '-6', '-c1', '-W1', '-n', v6[j] ?? '::'])).code === 0;
      if (!ok) failed.push(`${a.name}→${b.name} (v6 ${v6[j] ?? '?'})`);
    }
  }
  return failed;
}

test('e2e dual stack: 3 nodes, IPv4 + IPv6 pools, IPv6 mesh and ToR sessions, ping and ping -6 across nodes', async (t) => {
  const plan = await upDual(t, {});
  if (plan === undefined) return;
  const pods = plan.nodes.flatMap((n) => n.pods);

  await t.test('the default IPv6 pool was created by tabby-node from CALICO_IPV6POOL_CIDR; Nodes carry bgp.ipv6Address', async () => {
    const pools = await tabbyctl(ROOT, plan, ['get', 'ippools', '-o', 'yaml']);
    assert.equal(pools.code, 0, pools.text);
    assert.match(pools.text, /name: default-ipv6-ippool[\s\S]*cidr: fd00:10:244::\/48/);
    assert.match(pools.text, /blockSize: 122/);
    const nodes = await tabbyctl(ROOT, plan, ['get', 'nodes', '-o', 'yaml']);
    for (const n of plan.nodes) assert.match(nodes.text, new RegExp(`ipv6Address: ${n.ip6 ?? '?'}/64`), nodes.text);
  });

  await t.test('pods: an IPv4 and an IPv6 (/128, default via fe80::ecee:eeff:feee:eeee) address each', async () => {
    const v6 = await Promise.all(pods.map(podIp6));
    for (const [i, ip] of v6.entries()) assert.match(ip, /^fd00:10:244:/, `${pods[i]?.name ?? '?'} has no IPv6 address`);
    assert.equal(new Set(v6).size, pods.length, 'IPv6 addresses are unique');
    const v4 = await gatherPods(plan);
    for (const p of v4) assert.match(p.ip, /^10\.244\./, `${p.pod.name} has no IPv4 address`);
    for (const p of pods) {
      const rt = await run('ip', ['-n', p.netns, '-6', 'route', 'show', 'default']);
      assert.match(rt.stdout, /default via fe80::ecee:eeff:feee:eeee dev eth0/, p.name);
    }
  });

  // Routes can lag the harness's IPv4 convergence wait by a moment: poll (bounded) for the v6 view.
  const expectRoutes = async (): Promise<string[]> => {
    const problems: string[] = [];
    const own = new Map<string, string[]>();
    for (const n of plan.nodes) own.set(n.name, await blackholes6(n));
    for (const n of plan.nodes) {
      const lines = await routes6(n);
      if ((own.get(n.name) ?? []).length === 0) problems.push(`${n.name}: no IPv6 blackhole for an own block`);
      for (const p of n.pods) {
        const ip = await podIp6(p);
        if (!lines.some((l) => l.startsWith(`${ip} dev cali`))) problems.push(`${n.name}: no ${ip}/128 dev cali… for ${p.name}`);
      }
      for (const m of plan.nodes) {
        if (m === n) continue;
        for (const b of own.get(m.name) ?? []) {
          if (!lines.some((l) => l.startsWith(`${b} via ${m.ip6 ?? '?'} `) && /proto 80/.test(l))) problems.push(`${n.name}: no route ${b} via ${m.ip6 ?? '?'} proto 80`);
        }
      }
    }
    return problems;
  };
  let problems = await expectRoutes();
  for (let i = 0; i < 60 && problems.length > 0; i++) {
    await sleep(500);
    problems = await expectRoutes();
  }

  await t.test('routes: /128 per local pod, blackholes for own IPv6 blocks, remote IPv6 blocks via the owner\'s IPv6 address', () => {
    assert.deepEqual(problems, []);
  });

  await t.test('an IPv6 block route deleted by hand comes back (felix repairs IPv6 drift)', async () => {
    const [a, b] = plan.nodes;
    assert.ok(a !== undefined && b !== undefined);
    const block = (await blackholes6(b))[0];
    assert.ok(block !== undefined, `${b.name} has an IPv6 block`);
    const del = await run('ip', ['-n', a.netns, '-6', 'route', 'del', block]);
    assert.equal(del.code, 0, del.stderr);
    let back = false;
    for (let i = 0; i < 40 && !back; i++) {
      await sleep(100);
      back = (await routes6(a)).some((l) => l.startsWith(`${block} via ${b.ip6 ?? '?'} `));
    }
    assert.ok(back, `${a.name}: ${block} not restored`);
  });

  await t.test('IPv6 mesh Established between all nodes, and every node with the ToR over IPv6', async () => {
    for (const n of plan.nodes) {
      const out = await inNs(n.netns, [process.execPath, join(ROOT, 'bin/tabbyctl'), 'node', 'status', '--run-dir', n.runDir], { env: childEnv() });
      assert.equal(out.code, 0, out.stderr);
      const v6 = out.stdout.slice(out.stdout.indexOf('IPv6 BGP status'));
      assert.match(out.stdout, new RegExp(`IPv6 address: ${n.ip6 ?? '?'}/64`));
      for (const peer of [...plan.nodes.filter((m) => m !== n).map((m) => m.ip6 ?? '?'), plan.torIp6A ?? '?']) {
        assert.match(v6, new RegExp(`${peer}\\s.*Established`), `${n.name} ↔ ${peer}:\n${out.stdout}`);
      }
    }
    // Each node learned IPv6 prefixes over its IPv6 mesh sessions (felix could also route from the
    // datastore's blocks alone; this shows BGP carried them).
    for (const n of plan.nodes) {
      const m = await inNs(n.netns, [process.execPath, '-e', `fetch('http://127.0.0.1:${plan.options.metricsPort}/metrics').then(r=>r.text()).then(t=>{process.stdout.write(t)})`], { env: childEnv() });
      for (const peer of plan.nodes.filter((x) => x !== n).map((x) => x.ip6 ?? '?')) {
        const got = Number(new RegExp(`tabby_bgp_prefixes_received\\{peer="${peer}"\\} (\\d+)`).exec(m.stdout)?.[1] ?? '0');
        assert.ok(got >= 1, `${n.name} received ${got} prefixes from ${peer}:\n${m.stdout}`);
      }
    }
    const protos = (await birdc(plan, ['show', 'protocols'])).text;
    for (const n of plan.nodes) assert.match(protos, new RegExp(`^${birdProtocolName6(n)}\\s+BGP.*Established`, 'm'), protos);
  });

  await t.test('BIRD holds every IPv6 block, with the owner\'s IPv6 address as next hop', async () => {
    const table = (await birdc(plan, ['show', 'route', 'all'])).text;
    for (const n of plan.nodes) {
      for (const b of await blackholes6(n)) {
        const at = table.indexOf(b);
        assert.ok(at >= 0, `ToR misses ${b}:\n${table}`);
        assert.match(table.slice(at, at + 400), new RegExp(`via ${n.ip6 ?? '?'}`), `${b} next hop`);
      }
    }
  });

  await t.test('ping and ping -6 between every pair of pods on different nodes', async () => {
    assert.deepEqual(await crossNodePings(plan), []);
  });

  await t.test('kill -9 one tabby-node: IPv6 routes persist and ping -6 keeps working; after a restart the IPv6 mesh is back', async () => {
    const victim = plan.nodes[0]!;
    const owned6 = async (n: NodePlan): Promise<string[]> => (await routes6(n, ['proto', '80'])).sort();
    const before = new Map<string, string[]>();
    for (const n of plan.nodes) before.set(n.name, await owned6(n));
    const stateDir = plan.options.stateDir;
    const rec = readState(stateDir)?.procs.find((p) => p.role === `tabby-node:${victim.name}`);
    assert.ok(rec !== undefined && procAlive(rec.pid, rec.match), `tabby-node of ${victim.name} running`);
    process.kill(rec.pid, 'SIGKILL');
    for (let i = 0; i < 50 && procAlive(rec.pid, rec.match); i++) await sleep(100);
    assert.equal(procAlive(rec.pid, rec.match), false, 'the killed tabby-node is gone');
    for (const n of plan.nodes) assert.deepEqual(await owned6(n), before.get(n.name), `${n.name}'s IPv6 routes while ${victim.name}'s agent is down`);
    assert.deepEqual(await crossNodePings(plan), [], 'pings while the agent is down');
    const state = readState(stateDir);
    assert.ok(state !== undefined);
    await startNode(ROOT, plan, victim, state, () => writeState(stateDir, state));
    const meshUp = async (): Promise<boolean> => {
      for (const n of plan.nodes) {
        const out = await inNs(n.netns, [process.execPath, join(ROOT, 'bin/tabbyctl'), 'node', 'status', '--run-dir', n.runDir], { env: childEnv() });
        const v6 = out.stdout.slice(out.stdout.indexOf('IPv6 BGP status'));
        if (out.code !== 0 || plan.nodes.some((m) => m !== n && !new RegExp(`${m.ip6 ?? '?'}\\s.*Established`).test(v6))) return false;
      }
      return true;
    };
    let up = await meshUp();
    for (let i = 0; i < 120 && !up; i++) {
      await sleep(500);
      up = await meshUp();
    }
    assert.ok(up, 'IPv6 mesh Established again after the restart');
    for (const n of plan.nodes) assert.deepEqual(await owned6(n), before.get(n.name), `${n.name}'s IPv6 routes after the restart`);
    assert.deepEqual(await crossNodePings(plan), [], 'pings after the restart');
  });

  await t.test('NAT outgoing for the IPv6 pool: natOutgoing switched on live → ip6 masquerade on every node', async () => {
    const nft = async (n: NodePlan): Promise<string> => (await inNs(n.netns, ['nft', 'list', 'table', 'ip6', 'tabby-nat'])).stdout;
    for (const n of plan.nodes) assert.doesNotMatch(await nft(n), /fd00:10:244::\/48[\s\S]*masquerade|masq-pools[^}]*fd00:10:244::\/48/, `${n.name}: no v6 NAT before`);
    const p = await tabbyctl(ROOT, plan, ['patch', 'ippool', 'default-ipv6-ippool', '-p', '{"spec":{"natOutgoing":true}}']);
    assert.equal(p.code, 0, p.text);
    const want = (text: string): boolean => /set masq-pools[^}]*fd00:10:244::\/48/.test(text) && /ip6 saddr @masq-pools ip6 daddr != @all-pools masquerade/.test(text);
    for (const n of plan.nodes) {
      let text = await nft(n);
      for (let i = 0; i < 40 && !want(text); i++) {
        await sleep(250);
        text = await nft(n);
      }
      assert.ok(want(text), `${n.name}:\n${text}`);
    }
  });
});

test('e2e dual stack over VXLAN: IPv6 blocks through vxlan-v6.calico, IPv4 through vxlan.calico', async (t) => {
  const vx = await probeLinkType(PREFIX, 'vxlan');
  if (vx !== undefined) return t.skip(`kernel has no vxlan: ${vx}`);
  const plan = await upDual(t, { encap: 'vxlan', crossSubnet: false, podsPerNode: 1 });
  if (plan === undefined) return;
  const want = async (): Promise<string[]> => {
    const problems: string[] = [];
    const own = new Map<string, string[]>();
    for (const n of plan.nodes) own.set(n.name, await blackholes6(n));
    for (const n of plan.nodes) {
      const dev = await run('ip', ['-n', n.netns, '-d', 'link', 'show', 'vxlan-v6.calico']);
      if (!/vxlan id 4096 local fd00:7ab:0:a::\d+ .*dstport 4789/.test(dev.stdout)) problems.push(`${n.name}: vxlan-v6.calico missing or wrong: ${dev.stdout}${dev.stderr}`);
      const lines = await routes6(n);
      for (const m of plan.nodes) {
        if (m === n) continue;
        for (const b of own.get(m.name) ?? []) {
          if (!lines.some((l) => l.startsWith(`${b} via fd00:10:244:`) && /dev vxlan-v6\.calico proto 80 .*onlink/.test(l))) problems.push(`${n.name}: ${b} not via vxlan-v6.calico`);
        }
      }
      const fdb = await run('ip', ['netns', 'exec', n.netns, 'bridge', 'fdb', 'show', 'dev', 'vxlan-v6.calico']);
      for (const m of plan.nodes) if (m !== n && !fdb.stdout.includes(`dst ${m.ip6 ?? '?'} `)) problems.push(`${n.name}: no FDB entry to ${m.ip6 ?? '?'}`);
    }
    return problems;
  };
  let problems = await want();
  for (let i = 0; i < 60 && problems.length > 0; i++) {
    await sleep(500);
    problems = await want();
  }
  await t.test('vxlan-v6.calico with an IPv6 underlay, IPv6 block routes onlink via the remote VTEPs, FDB entries to the nodes\' IPv6 addresses', () => {
    assert.deepEqual(problems, []);
  });
  await t.test('pod MTU: host − 70 (IPv6 VXLAN)', async () => {
    const pod = plan.nodes[0]?.pods[0];
    assert.ok(pod);
    assert.match((await run('ip', ['-n', pod.netns, 'link', 'show', 'eth0'])).stdout, /mtu 1430 /);
  });
  await t.test('ping and ping -6 between pods on different nodes (encapsulated)', async () => {
    assert.deepEqual(await crossNodePings(plan), []);
  });
});
