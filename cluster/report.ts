/**
 * What `cluster up` / `cluster status` print: node table, node status, IPAM, one node's routes, the
 * pod-to-pod ping matrix and what the ToR learned, then the commands to explore and to tear down.
 * The formatting functions are pure (tested in test/cluster); gathering runs commands.
 */
import { join } from 'node:path';
import type { Plan, PodPlan } from './plan.js';
import { birdc } from './daemons.js';
import { podIp } from './pods.js';
import { readStatus } from '../node/status.js';
import { childEnv, run } from './sys.js';

export interface PingCell {
  ok: boolean;
  ms?: number;
}

export interface PodInfo {
  pod: PodPlan;
  ip: string;
}

/** Parse `ping -c1` output: the rtt of the reply, or undefined when none came back. */
export function parsePingRtt(text: string): number | undefined {
  const m = /time[=<]([\d.]+) ?ms/.exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** Matrix with sources as rows and destinations as columns; ✔ with latency, ✘ for no reply. */
export function formatPingMatrix(pods: PodInfo[], cells: PingCell[][]): string {
  const label = (p: PodInfo): string => `${p.pod.name} ${p.ip || '-'}`;
  const w0 = Math.max(8, ...pods.map((p) => label(p).length));
  const cellText = (c: PingCell | undefined, self: boolean): string => {
    if (self) return '·';
    if (c === undefined) return '?';
    return c.ok ? `✔ ${c.ms === undefined ? '' : c.ms < 10 ? c.ms.toFixed(2) : c.ms.toFixed(1)}`.trim() : '✘';
  };
  const cols = pods.map((p) => p.pod.name);
  const widths = cols.map((c, j) => Math.max(c.length, ...pods.map((_, i) => cellText(cells[i]?.[j], i === j).length)));
  const lines = [`${'from \\ to'.padEnd(w0)}  ${cols.map((c, j) => c.padEnd(widths[j] ?? 0)).join('  ')}`];
  pods.forEach((p, i) => {
    lines.push(`${label(p).padEnd(w0)}  ${cols.map((_, j) => cellText(cells[i]?.[j], i === j).padEnd(widths[j] ?? 0)).join('  ')}`.trimEnd());
  });
  const total = pods.length * (pods.length - 1);
  const ok = cells.flatMap((row, i) => row.filter((c, j) => i !== j && c.ok)).length;
  lines.push(`${ok}/${total} pod pairs answered${ok === total && total > 0 ? ' — all ✔' : ''} (latency in ms)`);
  return lines.join('\n');
}

export async function gatherPods(plan: Plan): Promise<PodInfo[]> {
  const pods = plan.nodes.flatMap((n) => n.pods);
  return Promise.all(pods.map(async (pod) => ({ pod, ip: await podIp(pod) })));
}

/** Ping every pod from every pod (`ping -c1 -W1`, retried once; a row at a time in parallel). */
export async function pingMatrix(pods: PodInfo[]): Promise<PingCell[][]> {
  const rows: PingCell[][] = [];
  for (const [i, src] of pods.entries()) {
    rows.push(
      await Promise.all(
        pods.map(async (dst, j): Promise<PingCell> => {
          if (i === j) return { ok: true };
          if (src.ip === '' || dst.ip === '') return { ok: false };
          // A second try when the first gets no answer: the very first packet can be lost to ARP
          // resolution on a loaded machine, and ✘ should mean "no path", not "slow neighbour".
          for (let attempt = 0; attempt < 2; attempt++) {
            const r = await run('ip', ['netns', 'exec', src.pod.netns, 'ping', '-c1', '-W1', '-n', dst.ip], { timeoutMs: 5000 });
            const ms = parsePingRtt(r.stdout);
            if (r.code === 0) return ms === undefined ? { ok: true } : { ok: true, ms };
          }
          return { ok: false };
        }),
      ),
    );
  }
  return rows;
}

export function section(title: string, body: string): string {
  return `\n── ${title} ${'─'.repeat(Math.max(3, 72 - title.length))}\n${body.trimEnd()}`;
}

export function tabbyctlArgs(root: string, plan: Plan): { cmd: string; args: string[]; shown: string } {
  const bin = join(root, 'bin', 'tabbyctl');
  return { cmd: process.execPath, args: [bin, '--config', plan.tabbyctlCfg], shown: `${bin} --config ${plan.tabbyctlCfg}` };
}

export async function tabbyctl(root: string, plan: Plan, args: string[], input?: string): Promise<{ code: number; text: string }> {
  const t = tabbyctlArgs(root, plan);
  const r = await run(t.cmd, [...t.args, ...args], { env: childEnv(), timeoutMs: 30000, ...(input === undefined ? {} : { input }) });
  return { code: r.code, text: (r.stdout + (r.code === 0 ? '' : r.stderr)).trimEnd() };
}

/** Block CIDRs from `tabbyctl ipam show --show-blocks`. */
export function parseIpamBlocks(text: string): string[] {
  return [...text.matchAll(/\|\s*Block\s*\|\s*([\d./]+)\s*\|/g)].map((m) => m[1] ?? '');
}

export async function ipamBlocks(root: string, plan: Plan): Promise<string[]> {
  const r = await tabbyctl(root, plan, ['ipam', 'show', '--show-blocks']);
  if (r.code !== 0) throw new Error(`tabbyctl ipam show failed: ${r.text}`);
  return parseIpamBlocks(r.text);
}

/** Blocks missing from the ToR's table and from each node's kernel routes (empty = converged). */
export async function missingRoutes(root: string, plan: Plan): Promise<string[]> {
  const blocks = await ipamBlocks(root, plan);
  const missing: string[] = [];
  const tor = (await birdc(plan, ['show', 'route'])).text;
  for (const b of blocks) if (!tor.includes(b)) missing.push(`ToR: ${b}`);
  for (const n of plan.nodes) {
    const routes = (await run('ip', ['-n', n.netns, '-4', 'route', 'show'])).stdout;
    for (const b of blocks) if (!routes.split('\n').some((l) => l.includes(b))) missing.push(`${n.name}: ${b}`);
  }
  return missing;
}

/**
 * BGP sessions of `nodes` (default: all) that are not Established, read from each tabby-node's
 * status socket: `node-1 → 172.31.254.13: Active (Connection refused)`. [] = every session is up.
 */
export async function sessionsDown(plan: Plan, nodes = plan.nodes): Promise<string[]> {
  const down: string[] = [];
  for (const n of nodes) {
    try {
      const snap = await readStatus(n.runDir);
      if (snap.bgp.peers.length === 0) down.push(`${n.name}: no BGP peers`);
      for (const p of snap.bgp.peers) if (p.state !== 'Established') down.push(`${n.name} → ${p.address}: ${p.state} (${p.info})`);
    } catch (e) {
      down.push(`${n.name}: ${(e as Error).message}`);
    }
  }
  return down;
}

/** felix's routes (proto 80) in node n's kernel, one line each, sorted. */
export async function ownedRoutes(nodeNs: string): Promise<string[]> {
  const r = await run('ip', ['-n', nodeNs, '-4', 'route', 'show', 'proto', '80']);
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
}

export interface ReportParts {
  nodeStatus: boolean;
  pods: boolean;
}

/** The whole report, as lines for the terminal. */
export async function buildReport(root: string, plan: Plan, parts: ReportParts): Promise<{ text: string; pingOk: number; pingTotal: number }> {
  const out: string[] = [];
  const first = plan.nodes[0];
  const nodes = await tabbyctl(root, plan, ['get', 'nodes', '-o', 'wide']);
  out.push(section('Nodes (tabbyctl get nodes -o wide)', nodes.text || '(none)'));
  if (parts.nodeStatus && first !== undefined) {
    const st = await run('ip', ['netns', 'exec', first.netns, process.execPath, join(root, 'bin', 'tabbyctl'), 'node', 'status', '--run-dir', first.runDir], { env: childEnv() });
    out.push(section(`tabbyctl node status (${first.name})`, (st.stdout + st.stderr).trim()));
  }
  const ipam = await tabbyctl(root, plan, ['ipam', 'show', '--show-blocks']);
  out.push(section('IPAM (tabbyctl ipam show --show-blocks)', ipam.text));
  if (first !== undefined) {
    const routes = await run('ip', ['-n', first.netns, '-4', 'route', 'show']);
    out.push(section(`Routes on ${first.name} (ip -n ${first.netns} route)`, routes.stdout));
  }
  let pingOk = 0;
  let pingTotal = 0;
  if (parts.pods) {
    const pods = await gatherPods(plan);
    const cells = await pingMatrix(pods);
    pingTotal = pods.length * (pods.length - 1);
    pingOk = cells.flatMap((row, i) => row.filter((c, j) => i !== j && c.ok)).length;
    out.push(section('Ping matrix (ping -c1 -W1 from each pod namespace)', formatPingMatrix(pods, cells)));
  }
  const protos = await birdc(plan, ['show', 'protocols']);
  const routes = await birdc(plan, ['show', 'route']);
  out.push(section('ToR BIRD sessions (birdc show protocols)', protos.text));
  out.push(section('What the ToR learned (birdc show route)', routes.text));
  return { text: out.join('\n'), pingOk, pingTotal };
}

export async function exploreText(root: string, plan: Plan): Promise<string> {
  const t = tabbyctlArgs(root, plan);
  const n = plan.nodes[0];
  const pod = n?.pods[0];
  const other = plan.nodes[1]?.pods[0] ?? n?.pods[1];
  const otherIp = other === undefined ? '' : await podIp(other);
  const lines = [
    plan.options.datastore === 'etcdv3'
      ? `export ETCD_ENDPOINTS=${plan.etcdEndpoint}   # etcd, reachable from this shell through ${plan.hostLink}`
      : `export DATASTORE_TYPE=kubernetes KUBECONFIG=${plan.kubeconfig}${plan.ownApiServer ? `   # the Kubernetes API test server at ${plan.apiEndpoint}` : ''}`,
    `${t.shown} get ippools -o wide`,
    `${t.shown} ipam show --show-blocks`,
  ];
  if (n !== undefined) {
    lines.push(`ip netns exec ${n.netns} ${join(root, 'bin', 'tabbyctl')} node status --run-dir ${n.runDir}`);
    lines.push(`ip -n ${n.netns} route            # routes of ${n.name}`);
    lines.push(`tail -f ${n.logFile}`);
  }
  if (pod !== undefined && other !== undefined && otherIp !== '') lines.push(`ip netns exec ${pod.netns} ping -c3 ${otherIp}   # ${pod.name} → ${other.name}`);
  lines.push(`birdc -s ${plan.birdCtl} show protocols all`);
  lines.push(`ip netns list | grep ${plan.options.prefix}`);
  return lines.join('\n');
}
