/**
 * `tabbyctl cluster up|down|status`: the local cluster in network namespaces. up is idempotent (an
 * existing cluster of the same shape is completed, not duplicated); down removes every namespace,
 * process, link and directory recorded in the state file, and sweeps namespaces with the prefix even
 * when the state file is gone.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterOptions, ClusterState, Plan } from './plan.js';
import { ClusterError, addUnique, birdProtocolName, clusterManifests, emptyState, makePlan, nodeManifests, sameShape, tabbyctlConfig } from './plan.js';
import { binAvailable, birdc, startApiServer, startBird, startEtcd, startNode } from './daemons.js';
import { addPod, cniCall, podIp, prepareCniPath } from './pods.js';
import { buildReport, exploreText, missingRoutes, sessionsDown, tabbyctl } from './report.js';
import type { Output } from './state.js';
import { Progress, fmtMs, readState, repoRoot, writeState } from './state.js';
import { haveCommand, linkExists, listNetns, netnsExists, netnsPids, procAlive, run, sleep, stopProc } from './sys.js';
import { createFabric, createNode, createTor, probeLinkType } from './topology.js';

const NEEDED: Array<[cmd: string, pkg: string]> = [
  ['ip', 'iproute2'],
  ['bird', 'bird2'],
  ['birdc', 'bird2'],
  ['etcd', 'etcd-server'],
  ['etcdctl', 'etcd-client'],
  ['ping', 'iputils-ping'],
  ['sysctl', 'procps'],
];

export interface UpResult {
  plan: Plan;
  nodesRunning: boolean;
  podsCreated: boolean;
  pingOk: number;
  pingTotal: number;
  /** Reasons for the parts that were skipped (branch not landed yet…). */
  skipped: string[];
}

export interface UpOptions {
  /** Print the report at the end (default true). */
  report?: boolean;
  /** Bound for BGP convergence (default 60 s). */
  convergeTimeoutMs?: number;
  /** Checkout root (default: found from this module). */
  root?: string;
}

/** Missing programs → the apt-get line; installs them itself when root. */
export async function preflight(io: Output): Promise<void> {
  const missing: string[] = [];
  for (const [cmd, pkg] of NEEDED) if (!(await haveCommand(cmd))) addUnique(missing, pkg);
  const root = process.getuid?.() === 0;
  if (missing.length > 0) {
    const line = `apt-get install -y ${missing.join(' ')}`;
    if (!root) throw new ClusterError(`missing packages: ${missing.join(', ')}`, `run as root: ${line}`);
    io.out(`installing missing packages: ${line}`);
    const r = await run('apt-get', ['install', '-y', ...missing], { timeoutMs: 600000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.code !== 0) throw new ClusterError(`\`${line}\` failed: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`, 'run `apt-get update` first, then try again');
  }
  if (!root) throw new ClusterError('cluster up needs root (it creates network namespaces)', 'run it with sudo: sudo npm run demo');
}

export async function clusterUp(o: ClusterOptions, io: Output, uo: UpOptions = {}): Promise<UpResult> {
  const root = uo.root ?? repoRoot();
  const plan = makePlan(o);
  const started = Date.now();
  await preflight(io);
  if (o.datastore === 'kubernetes' && o.kubeconfig !== undefined && !existsSync(o.kubeconfig)) {
    throw new ClusterError(`--datastore kubernetes: kubeconfig ${o.kubeconfig} not found`, 'pass --kubeconfig <file> of a cluster whose API server the node namespaces can reach (through the ToR), or omit it to run the Kubernetes API test server');
  }
  if (o.encap === 'ipip') {
    const why = await probeLinkType(o.prefix, 'ipip');
    if (why !== undefined) throw new ClusterError(`--encap ipip: this kernel cannot create ipip links (${why})`, 'use --encap vxlan or --encap none; IPIP needs the ipip kernel module');
  }
  if (o.encap === 'vxlan') {
    const why = await probeLinkType(o.prefix, 'vxlan');
    if (why !== undefined) throw new ClusterError(`--encap vxlan: this kernel cannot create vxlan links (${why})`, 'use --encap none');
  }
  let state: ClusterState | undefined = readState(o.stateDir);
  if (state !== undefined && !sameShape(state.options, o)) {
    throw new ClusterError(`a cluster of another shape is already up (state in ${o.stateDir})`, `tear it down first: tabbyctl cluster down --state-dir ${o.stateDir}`);
  }
  if (state === undefined) {
    const leftovers = listNetns(o.prefix);
    if (leftovers.length > 0) {
      throw new ClusterError(`namespaces with prefix ${o.prefix} exist but no state file (${leftovers.slice(0, 3).join(', ')}…)`, `remove them with: tabbyctl cluster down --prefix ${o.prefix}`);
    }
    state = emptyState(o);
  }
  const st = state;
  mkdirSync(o.stateDir, { recursive: true, mode: 0o755 });
  addUnique(st.dirs, o.stateDir);
  const save = (): void => writeState(o.stateDir, st);
  save();

  const skipped: string[] = [];
  const node = binAvailable(root, 'tabby-node');
  const cni = binAvailable(root, 'tabby');
  const ipam = binAvailable(root, 'tabby-ipam');
  const ctlOk = binAvailable(root, 'tabbyctl');
  if (!ctlOk.ok) throw new ClusterError(`tabbyctl: ${ctlOk.why ?? 'missing'}`, 'run `npm run build`');
  const total = 9 + o.nodes + (node.ok ? 0 : 1);
  const p = new Progress(io, total);
  io.out(`tabby cluster up: ${o.nodes} nodes × ${o.podsPerNode} pods, encap ${o.encap}${o.crossSubnet ? ' (nodes on two subnets)' : ''}, prefix ${o.prefix}, state ${o.stateDir}`);

  await p.step('fabric namespace + bridge(s)', () => createFabric(plan, st, save), () => `${plan.fabricNs}, ${plan.hostLink} ${plan.hostIp}`);
  await p.step('ToR namespace', () => createTor(plan, st, save), () => plan.torNs);
  await p.step(`${o.nodes} node namespaces`, async () => {
    for (const n of plan.nodes) await createNode(plan, n, st, save);
  }, () => plan.nodes.map((n) => `${n.name}=${n.ip}`).join(' '));
  if (o.datastore === 'etcdv3') await p.step('etcd (in the fabric namespace)', () => startEtcd(plan, st, save), (v) => v);
  else if (plan.ownApiServer) await p.step('Kubernetes API test server (in the fabric namespace)', () => startApiServer(root, plan, st, save), (v) => v);
  else p.skip('etcd', `datastore kubernetes (${plan.kubeconfig})`);
  await p.step('pool + ToR BGPPeer (tabbyctl apply)', async () => {
    writeFileSync(plan.tabbyctlCfg, tabbyctlConfig(plan));
    const r = await tabbyctl(root, plan, ['apply', '-f', '-'], clusterManifests(plan));
    if (r.code !== 0) throw new ClusterError(`tabbyctl apply failed: ${r.text}`);
  }, () => `${o.podCidr}, peer ${plan.torIpA}`);
  await p.step('BIRD ToR', () => startBird(plan, st, save), (v) => v);

  let nodesRunning = false;
  if (node.ok) {
    for (const n of plan.nodes) await p.step(`tabby-node ${n.name}`, () => startNode(root, plan, n, st, save), (v) => v);
    nodesRunning = true;
    await p.step('BGP convergence (ToR sessions + node-to-node mesh Established)', () => waitConverged(plan, uo.convergeTimeoutMs ?? 60000), (v) => v);
  } else {
    skipped.push(`nodes: ${node.why ?? ''}`);
    for (const n of plan.nodes) p.skip(`tabby-node ${n.name}`, node.why ?? '');
    p.skip('BGP convergence', 'no tabby-node');
  }

  let podsCreated = false;
  if (!cni.ok || !ipam.ok) {
    const why = cni.ok ? (ipam.why ?? '') : (cni.why ?? '');
    skipped.push(`pods: ${why}`);
    p.skip(`${o.nodes * o.podsPerNode} pods via the CNI plugin`, why);
  } else {
    if (!nodesRunning) {
      // Stand-in for tabby-node's registration, so the CNI plugin has its Node: pods get addresses
      // and same-node pings work; cross-node routes need tabby-node.
      await p.step('register Nodes (stand-in for tabby-node)', async () => {
        const r = await tabbyctl(root, plan, ['apply', '-f', '-'], nodeManifests(plan));
        if (r.code !== 0) throw new ClusterError(`tabbyctl apply (nodes) failed: ${r.text}`);
      });
    }
    await p.step(`${o.nodes * o.podsPerNode} pods via the CNI plugin`, async () => {
      const cniPath = prepareCniPath(root, plan);
      mkdirSync(plan.cniDir, { recursive: true });
      // Nodes in parallel, each node's pods one after the other (as a kubelet would).
      await Promise.all(
        plan.nodes.map(async (n) => {
          for (const pod of n.pods) {
            if (netnsExists(pod.netns) && (await podIp(pod)) !== '') continue;
            await addPod(plan, n, pod, cniPath, st, save);
          }
        }),
      );
    });
    podsCreated = true;
  }
  if (nodesRunning && podsCreated) {
    await p.step('routes converged (every block at the ToR and on every node)', async () => {
      const end = Date.now() + (uo.convergeTimeoutMs ?? 60000);
      let missing = await missingRoutes(root, plan);
      while (missing.length > 0 && Date.now() < end) {
        await sleep(500);
        missing = await missingRoutes(root, plan);
      }
      if (missing.length > 0) io.err(`warning: routes still missing after the wait: ${missing.join(', ')}`);
      return missing.length;
    }, (m) => (m === 0 ? '' : `WARNING: ${m} block routes missing (see the routes and the ping matrix below)`));
  } else {
    p.skip('routes converged', nodesRunning ? 'no pods' : 'no tabby-node');
  }
  addUnique(st.steps, 'up');
  save();
  io.out(`cluster up in ${fmtMs(Date.now() - started)}`);

  let pingOk = 0;
  let pingTotal = 0;
  if (uo.report !== false) {
    const rep = await buildReport(root, plan, { nodeStatus: nodesRunning, pods: podsCreated });
    io.out(rep.text);
    pingOk = rep.pingOk;
    pingTotal = rep.pingTotal;
    io.out(`\n── Explore ${'─'.repeat(66)}\n${await exploreText(root, plan)}`);
    for (const s of skipped) io.out(`not done yet: ${s}`);
    io.out(`\nTear down: npm run demo -- down   (or: ${root}/bin/tabbyctl cluster down${o.prefix === 'tdm-' ? '' : ` --prefix ${o.prefix} --state-dir ${o.stateDir}`})`);
  }
  return { plan, nodesRunning, podsCreated, pingOk, pingTotal, skipped };
}

/** Established BIRD sessions to the nodes / all nodes. */
export async function torSessions(plan: Plan): Promise<{ up: number; total: number; text: string }> {
  const r = await birdc(plan, ['show', 'protocols']);
  let up = 0;
  for (const n of plan.nodes) {
    const line = r.text.split('\n').find((l) => l.startsWith(`${birdProtocolName(n)} `));
    if (line !== undefined && /\bEstablished\b/.test(line)) up++;
  }
  return { up, total: plan.nodes.length, text: r.text };
}

/** Every ToR session and every session of every tabby-node (mesh and ToR) Established. */
async function waitConverged(plan: Plan, limitMs: number): Promise<string> {
  const end = Date.now() + limitMs;
  let last = { up: 0, total: plan.nodes.length, text: '' };
  let down: string[] = [];
  while (Date.now() < end) {
    last = await torSessions(plan);
    down = last.up === last.total ? await sessionsDown(plan) : [];
    if (last.up === last.total && down.length === 0) return `${last.up}/${last.total} ToR sessions and the node-to-node mesh Established`;
    await sleep(200);
  }
  const nodeSide = down.length > 0 ? `; not Established: ${down.join('; ')}` : '';
  throw new ClusterError(
    `BGP did not converge within ${limitMs / 1000} s: ${last.up}/${last.total} ToR sessions Established${nodeSide}`,
    `look at: birdc -s ${plan.birdCtl} show protocols all; node logs under ${plan.options.stateDir}`,
  );
}

export interface DownResult {
  netns: number;
  procs: number;
  links: number;
  dirs: number;
}

/**
 * Remove everything: recorded processes (pid + command-line guard), every process still living in
 * one of the cluster's namespaces, the namespaces (recorded ones and any with the prefix), the root
 * link, the state directory. Safe to run twice and without a state file.
 */
export async function clusterDown(prefix: string, stateDir: string, io: Output): Promise<DownResult> {
  let state: ClusterState | undefined;
  try {
    state = readState(stateDir);
  } catch (e) {
    io.err(`warning: ${(e as Error).message}; sweeping by prefix ${prefix}`);
  }
  const res: DownResult = { netns: 0, procs: 0, links: 0, dirs: 0 };
  const pfx = state?.options.prefix ?? prefix;
  // Pods' addresses outlive the cluster only in a datastore of someone else's.
  if (state !== undefined && !makePlan(state.options).ownApiServer && state.options.datastore !== 'etcdv3') await releasePods(state, io);
  for (const rec of state?.procs ?? []) if (await stopProc(rec.pid, rec.match)) res.procs++;
  const names = [...new Set([...(state?.netns ?? []), ...listNetns(pfx)])].filter((n) => n.startsWith(pfx));
  for (const ns of names) {
    if (!netnsExists(ns)) continue;
    for (const pid of await netnsPids(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
        res.procs++;
      } catch {
        // gone already
      }
    }
  }
  if (names.length > 0) await sleep(100);
  // Pods first, then nodes, ToR, fabric: veths vanish with their namespace.
  const order = (n: string): number => (n.includes('pod-') ? 0 : n.endsWith('fabric') ? 3 : n.endsWith('tor') ? 2 : 1);
  for (const ns of names.sort((a, b) => order(a) - order(b))) {
    if (!netnsExists(ns)) continue;
    const r = await run('ip', ['netns', 'del', ns]);
    if (r.code === 0) res.netns++;
    else io.err(`warning: ip netns del ${ns}: ${r.stderr.trim()}`);
  }
  for (const l of [...new Set([...(state?.hostLinks ?? []), `${pfx}host`])]) {
    if (!linkExists(l)) continue;
    const r = await run('ip', ['link', 'del', l]);
    if (r.code === 0) res.links++;
  }
  for (const d of [...(state?.dirs ?? []), stateDir].reverse()) {
    if (existsSync(d)) {
      rmSync(d, { recursive: true, force: true });
      res.dirs++;
    }
  }
  return res;
}

/**
 * With an external datastore (kubernetes) the pods' addresses and WorkloadEndpoints outlive the
 * namespaces: CNI DEL every pod first, as a runtime would. Our own etcd simply goes away.
 */
async function releasePods(state: ClusterState, io: Output): Promise<void> {
  const plan = makePlan(state.options);
  const cniPath = join(plan.cniDir, 'bin');
  if (!existsSync(cniPath)) return;
  for (const n of plan.nodes) {
    if (!netnsExists(n.netns)) continue;
    for (const pod of n.pods) {
      const r = await cniCall(plan, n, pod, 'DEL', cniPath);
      if (r.code !== 0) io.err(`warning: CNI DEL of ${pod.name}: ${r.out.trim() || r.err.trim()}`);
    }
  }
}

export async function clusterStatus(o: ClusterOptions, io: Output, root = repoRoot()): Promise<number> {
  const state = readState(o.stateDir);
  if (state === undefined) {
    const left = listNetns(o.prefix);
    io.out(left.length === 0 ? `no cluster (no state in ${o.stateDir})` : `no state file but ${left.length} namespaces with prefix ${o.prefix}: run tabbyctl cluster down --prefix ${o.prefix}`);
    return left.length === 0 ? 3 : 1;
  }
  const plan = makePlan(state.options);
  io.out(`cluster ${state.options.prefix}: up since ${state.createdAt}; ${state.netns.length} namespaces; state ${o.stateDir}`);
  for (const p of state.procs) {
    const alive = procAlive(p.pid, p.match);
    io.out(`  ${p.role.padEnd(24)} pid ${String(p.pid).padEnd(8)} ${alive ? 'running' : 'NOT RUNNING'}  ${p.log}`);
  }
  const anyPods = plan.nodes.some((n) => n.pods.some((pod) => netnsExists(pod.netns)));
  const nodesRunning = state.procs.some((p) => p.role.startsWith('tabby-node:'));
  const rep = await buildReport(root, plan, { nodeStatus: nodesRunning, pods: anyPods });
  io.out(rep.text);
  return 0;
}
