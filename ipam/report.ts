/**
 * The data behind `tabbyctl ipam show | check | release | configure` (calico.md §6.3). Reading is
 * one `loadSnapshot` (every pool, block, affinity, handle and the configuration); everything else
 * is a pure function over that snapshot returning rows or objects. tabbyctl formats them.
 *
 * `ipam check` report (JSON, `version: 1`):
 * ```
 * {
 *   "version": 1,
 *   "generatedAt": "<ISO time>",
 *   "ownerCheck": true,                 // false when no owner source was given (leakedIps then empty)
 *   "summary": { "blocks", "allocations", "activePools", "tunnelIps", "workloadIps", "inUseIps",
 *                "leakedIps", "ipsOutsidePools", "handlesWithoutIps", "handlesWithIps",
 *                "handleCountMismatches", "affinityProblems", "problems" },
 *   "leakedIps":        [{ "ip", "block", "handle", "sequenceNumber", "attrs" }],   // allocated, owner gone
 *   "ipsOutsidePools":  [{ "ip", "block", "handle" }],                                // block in no enabled pool
 *   "handlesWithoutIps":[{ "handleID", "block": { "<cidr>": n } }],                   // counts but no allocation
 *   "handleCountMismatches": [{ "handleID", "block", "recorded", "actual" }],         // e.g. crash after handle write
 *   "affinityProblems": [{ "cidr", "node", "blockAffinity", "affinityState", "problem" }]
 * }
 * ```
 * `problems` = leaked + outside pools + handles without IPs + count mismatches + affinity problems.
 */
import type { Datastore } from '../datastore/types.js';
import { AllocationBlock, hostOf } from './block.js';
import { cidrContains, cidrSize, cidrWithin, parseCidr, parseIp } from './cidr.js';
import { IpamError } from './errors.js';
import { POD_CONTAINER_ID_ANNOTATION, TUNNEL_HANDLE_RE } from './gc.js';
import type { Ipam } from './ipam.js';
import { type PoolInfo, poolInfo } from './pools.js';
import { IpamStore } from './rw.js';
import type { AllocationAttribute, BlockAffinity, IPAMBlock, IPAMConfigurationSpec, IPAMHandle } from '../api/types.js';

export interface IpamSnapshot {
  pools: PoolInfo[];
  blocks: IPAMBlock[];
  affinities: BlockAffinity[];
  handles: IPAMHandle[];
  config: IPAMConfigurationSpec;
}

export async function loadSnapshot(ds: Datastore): Promise<IpamSnapshot> {
  const st = new IpamStore(ds);
  const [pools, blocks, affinities, handles, config] = await Promise.all([
    st.listPools(),
    st.listBlocks(),
    st.listAffinities(),
    st.listHandles(),
    st.getConfig(),
  ]);
  return { pools: pools.map(poolInfo), blocks, affinities, handles, config };
}

// ------------------------------------------------------------------ show

/** Go's `%.5g`: up to 5 significant digits, exponent form (`1.2089e+24`) for large numbers. */
export function formatG5(n: number): string {
  if (n === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  if (exp < -4 || exp >= 5) {
    const [mant, e] = n.toExponential(4).split('e') as [string, string];
    const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
    const sign = e.startsWith('-') ? '-' : '+';
    const digits = e.replace(/^[+-]/, '');
    return `${m}e${sign}${digits.padStart(2, '0')}`;
  }
  return String(Number(n.toPrecision(5)));
}

/** calicoctl's `%.5g (%.f%%)` cell, e.g. `5 (8%)`. */
export function usageCell(n: number, total: number): string {
  const pct = total > 0 ? Math.round((n / total) * 100) : 0;
  return `${formatG5(n)} (${pct}%)`;
}

export interface UsageRow {
  grouping: 'IP Pool' | 'Block';
  cidr: string;
  total: number;
  inUse: number;
  free: number;
  /** Table cells: GROUPING | CIDR | IPS TOTAL | IPS IN USE | IPS FREE. */
  cells: [string, string, string, string, string];
}

export const USAGE_HEADERS = ['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE'] as const;

function usageRow(grouping: UsageRow['grouping'], cidr: string, total: number, inUse: number): UsageRow {
  const free = total - inUse;
  return { grouping, cidr, total, inUse, free, cells: [grouping, cidr, formatG5(total), usageCell(inUse, total), usageCell(free, total)] };
}

/** `ipam show [--show-blocks]`: one row per pool, then (with blocks) one per block inside it. */
export function showRows(s: IpamSnapshot, opts: { showBlocks?: boolean } = {}): UsageRow[] {
  const rows: UsageRow[] = [];
  for (const p of [...s.pools].sort((a, b) => a.cidrText.localeCompare(b.cidrText))) {
    const inside = s.blocks.filter((b) => cidrWithin(parseCidr(b.spec.cidr), p.cidr));
    const inUse = inside.reduce((n, b) => n + new AllocationBlock(b.spec).inUse(), 0);
    rows.push(usageRow('IP Pool', p.cidrText, Number(cidrSize(p.cidr)), inUse));
    if (opts.showBlocks) {
      for (const b of inside.sort((x, y) => x.spec.cidr.localeCompare(y.spec.cidr))) {
        rows.push(usageRow('Block', b.spec.cidr, b.spec.allocations.length, new AllocationBlock(b.spec).inUse()));
      }
    }
  }
  return rows;
}

export const BORROWED_HEADERS = ['IP', 'BORROWING-NODE', 'BLOCK', 'BLOCK OWNER', 'TYPE', 'ALLOCATED-TO'] as const;

export interface BorrowedRow {
  ip: string;
  borrowingNode: string;
  block: string;
  blockOwner: string;
  type: string;
  allocatedTo: string;
}

function allocatedTo(attr: AllocationAttribute): string {
  const sec = attr.secondary ?? {};
  if (sec.namespace && sec.pod) return `${sec.namespace}/${sec.pod}`;
  return sec.node ?? attr.handle_id ?? '';
}

/** `ipam show --show-borrowed`: addresses whose node is not the block's affine host. */
export function borrowedRows(s: IpamSnapshot): BorrowedRow[] {
  const rows: BorrowedRow[] = [];
  for (const obj of s.blocks) {
    const b = new AllocationBlock(obj.spec);
    const owner = b.hostAffinity();
    for (const a of b.allocated()) {
      const node = a.attr.secondary?.node;
      if (node && node !== owner) {
        rows.push({
          ip: a.ip,
          borrowingNode: node,
          block: obj.spec.cidr,
          blockOwner: owner ?? '',
          type: a.attr.secondary?.type ?? 'pod',
          allocatedTo: allocatedTo(a.attr),
        });
      }
    }
  }
  return rows.sort((x, y) => x.ip.localeCompare(y.ip, undefined, { numeric: true }));
}

/** `ipam show --show-configuration`: PROPERTY | VALUE. */
export function configurationRows(cfg: IPAMConfigurationSpec): Array<[string, string]> {
  return [
    ['StrictAffinity', String(cfg.strictAffinity)],
    ['AutoAllocateBlocks', String(cfg.autoAllocateBlocks)],
    ['MaxBlocksPerHost', String(cfg.maxBlocksPerHost ?? 0)],
  ];
}

export interface IpInfo {
  ip: string;
  inUse: boolean;
  block?: string;
  handleId?: string;
  attributes?: Record<string, string>;
  /** Lines as calicoctl prints them. */
  lines: string[];
}

/** `ipam show --ip=IP`. */
export function ipInfo(s: IpamSnapshot, ip: string): IpInfo {
  const { family, value } = parseIp(ip);
  for (const obj of s.blocks) {
    const c = parseCidr(obj.spec.cidr);
    if (!cidrContains(c, family, value)) continue;
    const b = new AllocationBlock(obj.spec);
    const ord = Number(value - c.base);
    const attr = b.attributeOf(ord);
    if (!attr) break;
    const attrs = attr.secondary ?? {};
    const lines = [`IP ${b.ipOf(ord)} is in use`];
    if (attr.handle_id) lines.push(`Handle ID: ${attr.handle_id}`);
    lines.push('Attributes:', ...Object.keys(attrs).sort().map((k) => `  ${k}: ${attrs[k]}`));
    const out: IpInfo = { ip: b.ipOf(ord), inUse: true, block: obj.spec.cidr, attributes: attrs, lines };
    if (attr.handle_id) out.handleId = attr.handle_id;
    return out;
  }
  return { ip, inUse: false, lines: [`IP ${ip} is not currently assigned`] };
}

// ------------------------------------------------------------------ check

/** Who is alive: handles of existing containers, and existing nodes (for tunnel handles). */
export interface Owners {
  handles: ReadonlySet<string>;
  nodes: ReadonlySet<string>;
}

export type OwnerSource = () => Promise<Owners>;


/**
 * Owner source for the etcd datastore: the WorkloadEndpoints the CNI plugin records
 * (`spec.containerID` → handle `<network>.<containerID>`) and the Node resources.
 */
export function workloadEndpointOwners(ds: Datastore, networkName = 'k8s-pod-network'): OwnerSource {
  return async () => {
    const [weps, nodes] = await Promise.all([ds.list('WorkloadEndpoint'), ds.list('Node')]);
    const handles = new Set<string>();
    for (const w of weps.items) {
      const cid = (w.spec as { containerID?: string } | undefined)?.containerID;
      if (cid) handles.add(`${networkName}.${cid}`);
    }
    return { handles, nodes: new Set(nodes.items.map((n) => n.metadata.name)) };
  };
}

export { POD_CONTAINER_ID_ANNOTATION };

/**
 * Owners on a Kubernetes cluster, from pods (as listed by any Kubernetes client) and node names:
 * a pod's `cni.projectcalico.org/containerID` annotation names the live handle.
 */
export function podOwners(
  pods: ReadonlyArray<{ metadata?: { annotations?: Record<string, string> | undefined } }>,
  nodes: Iterable<string>,
  networkName = 'k8s-pod-network',
): Owners {
  const handles = new Set<string>();
  for (const p of pods) {
    const cid = p.metadata?.annotations?.[POD_CONTAINER_ID_ANNOTATION];
    if (cid) handles.add(`${networkName}.${cid}`);
  }
  return { handles, nodes: new Set(nodes) };
}

export interface LeakedIp {
  ip: string;
  block: string;
  handle: string | null;
  sequenceNumber: number | null;
  attrs: Record<string, string>;
}

export interface AffinityProblem {
  cidr: string;
  node: string | null;
  blockAffinity: string | null;
  affinityState: string | null;
  problem: 'block-without-affinity' | 'affinity-without-block' | 'affinity-mismatch' | 'affinity-not-confirmed';
}

export interface CheckReport {
  version: 1;
  generatedAt: string;
  ownerCheck: boolean;
  summary: {
    blocks: number;
    allocations: number;
    activePools: number;
    tunnelIps: number;
    workloadIps: number;
    inUseIps: number;
    leakedIps: number;
    ipsOutsidePools: number;
    handlesWithoutIps: number;
    handlesWithIps: number;
    handleCountMismatches: number;
    affinityProblems: number;
    problems: number;
  };
  leakedIps: LeakedIp[];
  ipsOutsidePools: Array<{ ip: string; block: string; handle: string | null }>;
  handlesWithoutIps: Array<{ handleID: string; block: Record<string, number> }>;
  handleCountMismatches: Array<{ handleID: string; block: string; recorded: number; actual: number }>;
  affinityProblems: AffinityProblem[];
}

/** `ipam check`: pure over a snapshot and (optionally) the live owners. */
export function checkIpam(s: IpamSnapshot, owners: Owners | undefined, now: Date = new Date()): CheckReport {
  const active = s.pools.filter((p) => !p.disabled);
  const actualCounts = new Map<string, Map<string, number>>(); // handle → block → n
  const leaked: LeakedIp[] = [];
  const outside: CheckReport['ipsOutsidePools'] = [];
  let allocations = 0;
  let tunnelIps = 0;
  let inUse = 0;
  for (const obj of s.blocks) {
    const b = new AllocationBlock(obj.spec);
    const inPool = active.some((p) => cidrWithin(b.cidr, p.cidr));
    for (const a of b.allocated()) {
      allocations++;
      const h = a.attr.handle_id ?? null;
      if (h) {
        const m = actualCounts.get(h) ?? new Map<string, number>();
        m.set(obj.spec.cidr, (m.get(obj.spec.cidr) ?? 0) + 1);
        actualCounts.set(h, m);
      }
      const tunnel = h ? TUNNEL_HANDLE_RE.exec(h) : null;
      if (tunnel) tunnelIps++;
      if (!inPool) outside.push({ ip: a.ip, block: obj.spec.cidr, handle: h });
      if (!owners) continue;
      const live = h !== null && (owners.handles.has(h) || (tunnel !== null && owners.nodes.has(tunnel[1]!)));
      if (live) inUse++;
      else {
        leaked.push({
          ip: a.ip,
          block: obj.spec.cidr,
          handle: h,
          sequenceNumber: obj.spec.sequenceNumberForAllocation?.[String(a.ordinal)] ?? null,
          attrs: { ...(a.attr.secondary ?? {}) },
        });
      }
    }
  }

  const handlesWithoutIps: CheckReport['handlesWithoutIps'] = [];
  const mismatches: CheckReport['handleCountMismatches'] = [];
  let handlesWithIps = 0;
  for (const h of s.handles) {
    const actual = actualCounts.get(h.spec.handleID);
    if (!actual || actual.size === 0) {
      handlesWithoutIps.push({ handleID: h.spec.handleID, block: { ...h.spec.block } });
      continue;
    }
    handlesWithIps++;
    const cidrs = new Set([...Object.keys(h.spec.block), ...actual.keys()]);
    for (const cidr of cidrs) {
      const recorded = h.spec.block[cidr] ?? 0;
      const got = actual.get(cidr) ?? 0;
      if (recorded !== got) mismatches.push({ handleID: h.spec.handleID, block: cidr, recorded, actual: got });
    }
  }

  const affinityProblems: AffinityProblem[] = [];
  const blockByCidr = new Map(s.blocks.map((b) => [b.spec.cidr, b]));
  const affByKey = new Map(s.affinities.map((a) => [`${a.spec.node} ${a.spec.cidr}`, a]));
  for (const a of s.affinities) {
    const b = blockByCidr.get(a.spec.cidr);
    const base = { cidr: a.spec.cidr, node: a.spec.node, blockAffinity: b?.spec.affinity ?? null, affinityState: a.spec.state };
    if (!b) affinityProblems.push({ ...base, problem: 'affinity-without-block' });
    else if (b.spec.affinity !== `host:${a.spec.node}`) affinityProblems.push({ ...base, problem: 'affinity-mismatch' });
    else if (a.spec.state !== 'confirmed' && a.spec.state !== '') affinityProblems.push({ ...base, problem: 'affinity-not-confirmed' });
  }
  for (const b of s.blocks) {
    const host = hostOf(b.spec);
    if (host !== undefined && !affByKey.has(`${host} ${b.spec.cidr}`)) {
      affinityProblems.push({ cidr: b.spec.cidr, node: host, blockAffinity: b.spec.affinity ?? null, affinityState: null, problem: 'block-without-affinity' });
    }
  }

  const problems = leaked.length + outside.length + handlesWithoutIps.length + mismatches.length + affinityProblems.length;
  return {
    version: 1,
    generatedAt: now.toISOString(),
    ownerCheck: owners !== undefined,
    summary: {
      blocks: s.blocks.length,
      allocations,
      activePools: active.length,
      tunnelIps,
      workloadIps: allocations - tunnelIps,
      inUseIps: inUse,
      leakedIps: leaked.length,
      ipsOutsidePools: outside.length,
      handlesWithoutIps: handlesWithoutIps.length,
      handlesWithIps,
      handleCountMismatches: mismatches.length,
      affinityProblems: affinityProblems.length,
      problems,
    },
    leakedIps: leaked,
    ipsOutsidePools: outside,
    handlesWithoutIps,
    handleCountMismatches: mismatches,
    affinityProblems,
  };
}

/** The lines `calicoctl ipam check` prints, from a report. */
export function checkLines(r: CheckReport): string[] {
  const s = r.summary;
  return [
    'Checking IPAM for inconsistencies...',
    'Loading all IPAM blocks...',
    `Found ${s.blocks} IPAM blocks.`,
    ` IPAM blocks record ${s.allocations} allocations.`,
    `Found ${s.activePools} active IP pools.`,
    `Found ${s.tunnelIps} node tunnel IPs.`,
    `Found ${s.workloadIps} workload IPs.`,
    r.ownerCheck ? `Workloads and nodes are using ${s.inUseIps} IPs.` : 'No owner source: skipped the in-use check.',
    `Found ${s.leakedIps} IPs that are allocated in IPAM but not actually in use.`,
    `Found ${s.ipsOutsidePools} in-use IPs that are not in active IP pools.`,
    `Found ${s.handlesWithoutIps} handles with no matching IPs (and ${s.handlesWithIps} handles with matches).`,
    `Found ${s.handleCountMismatches} handles whose per-block counts disagree with the blocks.`,
    `Found ${s.affinityProblems} block/affinity disagreements.`,
    `Check complete; found ${s.problems} problems.`,
  ];
}

// ------------------------------------------------------------------ release / configure

export interface ReleaseOutcome {
  releasedIps: string[];
  alreadyFree: string[];
  handlesRepaired: string[];
  lines: string[];
}

/** `ipam release --ip=IP`. */
export async function releaseIp(ipam: Ipam, ip: string): Promise<ReleaseOutcome> {
  const free = await ipam.releaseIps([ip]);
  if (free.length > 0) {
    throw new IpamError('InvalidArgument', `IP address ${ip} is not assigned`, { hint: 'check it with `tabbyctl ipam show --ip`' });
  }
  return { releasedIps: [ip], alreadyFree: [], handlesRepaired: [], lines: [`Successfully released IP address ${ip}`] };
}

/** Reports older than this need --force (the cluster may have moved on). */
export const REPORT_MAX_AGE_MS = 60 * 60 * 1000;

/**
 * `ipam release --from-report=FILE [--force]`: release leaked IPs (guarded by their sequence
 * numbers, so an address re-allocated since the check is left alone) and repair handle records.
 */
export async function releaseFromReport(ipam: Ipam, report: CheckReport, opts: { force?: boolean; now?: Date } = {}): Promise<ReleaseOutcome> {
  if (report.version !== 1) throw new IpamError('InvalidArgument', `unsupported report version ${String(report.version)}`);
  const age = (opts.now ?? new Date()).getTime() - Date.parse(report.generatedAt);
  if (!opts.force && !(age <= REPORT_MAX_AGE_MS)) {
    throw new IpamError('InvalidArgument', `report from ${report.generatedAt} is older than an hour`, {
      hint: 'run `tabbyctl ipam check -o report.json` again, or pass --force',
    });
  }
  const lines = [`Releasing ${report.leakedIps.length} old IPs...`];
  const releasedIps: string[] = [];
  const alreadyFree: string[] = [];
  for (const l of report.leakedIps) {
    try {
      const item = l.sequenceNumber === null ? { ip: l.ip } : { ip: l.ip, sequenceNumber: l.sequenceNumber };
      const free = await ipam.releaseIps([item]);
      (free.length > 0 ? alreadyFree : releasedIps).push(l.ip);
    } catch (err) {
      if (err instanceof IpamError && err.code === 'BadSequenceNumber') {
        lines.push(`Skipping ${l.ip}: re-allocated since the report was made`);
        continue;
      }
      throw err;
    }
  }
  lines.push(`Released ${releasedIps.length} IPs successfully`);
  const handles = new Set([...report.handlesWithoutIps.map((h) => h.handleID), ...report.handleCountMismatches.map((h) => h.handleID)]);
  const handlesRepaired: string[] = [];
  for (const h of handles) if (await ipam.reconcileHandle(h)) handlesRepaired.push(h);
  if (handles.size > 0) lines.push(`Repaired ${handlesRepaired.length} handle records`);
  return { releasedIps, alreadyFree, handlesRepaired, lines };
}

/** `ipam configure --strictaffinity=… --max-blocks-per-host=…`. */
export async function configureIpam(ipam: Ipam, opts: { strictAffinity?: boolean; maxBlocksPerHost?: number }): Promise<string[]> {
  const patch: Partial<IPAMConfigurationSpec> = {};
  if (opts.strictAffinity !== undefined) patch.strictAffinity = opts.strictAffinity;
  if (opts.maxBlocksPerHost !== undefined) {
    if (!Number.isInteger(opts.maxBlocksPerHost) || opts.maxBlocksPerHost < 0) {
      throw new IpamError('InvalidConfig', `--max-blocks-per-host must be a non-negative integer`);
    }
    patch.maxBlocksPerHost = opts.maxBlocksPerHost;
  }
  if (Object.keys(patch).length === 0) throw new IpamError('InvalidArgument', 'nothing to configure', { hint: 'pass --strictaffinity and/or --max-blocks-per-host' });
  const next = await ipam.setConfig(patch);
  const lines: string[] = [];
  if (patch.strictAffinity !== undefined) lines.push(`Successfully set StrictAffinity to: ${next.strictAffinity}`);
  if (patch.maxBlocksPerHost !== undefined) lines.push(`Successfully set MaxBlocksPerHost to: ${next.maxBlocksPerHost ?? 0}`);
  return lines;
}
