/**
 * IPAM garbage collection planner (the leak GC Calico leaves to kube-controllers). Pure: given the
 * IPAM objects, a snapshot of who is alive, what the previous pass observed and the time, it says
 * which allocations and affinities to release now and what to remember for the next pass.
 *
 * Rules:
 * - Owners: an allocation with a container (attribute `containerID`, or a Calico-style handle
 *   `<network>.<containerID>` with pod attributes) belongs to that container's WorkloadEndpoint /
 *   pod; it is gone when no owner records the container, or the owner records addresses and this
 *   one is not among them (`ip-mismatch`). A tunnel handle `<type>-tunnel-addr-<node>` belongs to the
 *   Node `<node>`. Anything else (manual `ipam` assignments, unknown handles) has no owner we can
 *   judge and is never released, unless its `node` attribute names a deleted Node.
 * - A deleted Node (referenced by an affinity, a block, a tunnel handle or an allocation's `node`
 *   attribute, but without a Node resource) takes every allocation with `node: <it>`, its tunnel
 *   addresses and its block affinities with it.
 * - Two observations: an allocation (or deleted node) is released only when the previous pass saw it
 *   ownerless at least `graceMs` ago and this pass still does. An owner that reappears in between
 *   drops the observation. Observations key on the block ordinal AND its allocation sequence number,
 *   so an address re-allocated between passes starts over; releases carry the sequence number so the
 *   allocator refuses them when the address changed hands after this snapshot (ABA-safe).
 * - The caller must not call plan() when reading owners failed: no snapshot, no releases.
 */
import { AllocationBlock, hostOf } from './block.js';
import { formatIp, parseIp } from './cidr.js';
import type { BlockAffinity, IPAMBlock, IPAMHandle } from '../api/types.js';

/** Who is alive, as read at the start of a pass. */
export interface GcOwners {
  /** Names of existing Node resources. */
  nodes: ReadonlySet<string>;
  /**
   * Live containers: containerID → the addresses its owner records (WorkloadEndpoint ipNetworks,
   * pod podIPs, without prefix length). An empty set = owner exists, addresses not known yet.
   */
  containers: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * Kubernetes: live pods, `<namespace>/<name>` → podIPs (empty = no IP yet). When given, an
   * allocation with `namespace`/`pod` attributes is judged by its pod (absent, or IP not among its
   * podIPs → released), as Calico's kube-controllers do; `containers` judges the rest.
   */
  pods?: ReadonlyMap<string, ReadonlySet<string>>;
}

export type GcReason = 'owner-gone' | 'ip-mismatch' | 'node-deleted';

/** One ownerless allocation (waiting for its grace, or due now). */
export interface GcCandidate {
  ip: string;
  block: string;
  ordinal: number;
  handle: string | null;
  /** The block's sequenceNumberForAllocation for the ordinal (release guard). */
  sequenceNumber: number | null;
  reason: GcReason;
  /** When a pass first saw it ownerless (ms since the epoch). */
  since: number;
}

/** What a pass remembers: observation key → first time seen ownerless (ms). */
export type GcState = ReadonlyMap<string, number>;

export interface GcInput {
  blocks: readonly IPAMBlock[];
  affinities: readonly BlockAffinity[];
  handles: readonly IPAMHandle[];
  owners: GcOwners;
  previous: GcState;
  now: number;
  graceMs: number;
}

export interface GcPlan {
  /** Observations for the next pass (only things still ownerless). */
  state: Map<string, number>;
  /** Every ownerless allocation this pass saw (waiting or due). */
  candidates: GcCandidate[];
  /** Allocations to release now, each guarded by its sequence number. */
  releases: GcCandidate[];
  /** Nodes confirmed deleted (two observations, grace apart). */
  deletedNodes: string[];
  /** Affinities of confirmed deleted nodes to release (after the releases). */
  affinityReleases: Array<{ node: string; cidr: string }>;
  /** Tunnel handles of confirmed deleted nodes with no allocation left (delete/reconcile them). */
  handleCleanups: string[];
}

export const TUNNEL_HANDLE_RE = /^(?:ipip|vxlan|vxlan-v6|wireguard|wireguard-v6)-tunnel-addr-(.+)$/;

/** The node a tunnel handle belongs to, or undefined. */
export function tunnelHandleNode(handle: string | null | undefined): string | undefined {
  return handle ? TUNNEL_HANDLE_RE.exec(handle)?.[1] : undefined;
}

/** The container an allocation belongs to, or undefined when it is not a workload allocation. */
export function allocationContainer(handle: string | null, attrs: Record<string, string> | undefined): string | undefined {
  if (attrs?.containerID) return attrs.containerID;
  // Calico's CNI records namespace/pod but not the container; its handle is `<network>.<containerID>`.
  if (handle && (attrs?.pod || attrs?.namespace)) {
    const dot = handle.indexOf('.');
    if (dot > 0 && dot < handle.length - 1) return handle.slice(dot + 1);
  }
  return undefined;
}

function nodeKey(node: string): string {
  return `node ${node}`;
}

function allocKey(block: string, ordinal: number, seq: number | null, handle: string | null): string {
  return `alloc ${block} ${ordinal} ${seq ?? '-'} ${handle ?? '-'}`;
}

/**
 * An owner's address in the allocator's spelling: prefix length stripped (`10.0.0.1/32`), IPv6
 * canonicalised (so `fd00:0::1` matches `fd00::1`). Unparseable text is kept as is (matches nothing).
 */
export function bareIp(s: string): string {
  const i = s.indexOf('/');
  const ip = i < 0 ? s : s.slice(0, i);
  try {
    const { family, value } = parseIp(ip);
    return formatIp(family, value);
  } catch {
    return ip;
  }
}

function ownerVerdict(ips: ReadonlySet<string> | undefined, ip: string): GcReason | undefined {
  if (ips === undefined) return 'owner-gone';
  return ips.size > 0 && !ips.has(ip) ? 'ip-mismatch' : undefined;
}

export function planGc(input: GcInput): GcPlan {
  const { owners, previous, now, graceMs } = input;
  const state = new Map<string, number>();
  const observe = (key: string): { since: number; due: boolean } => {
    const prev = previous.get(key);
    const since = prev ?? now;
    state.set(key, since);
    return { since, due: prev !== undefined && now - prev >= graceMs };
  };

  // Nodes the IPAM data refers to, and which of them are gone.
  const referenced = new Set<string>();
  for (const a of input.affinities) referenced.add(a.spec.node);
  for (const h of input.handles) {
    const n = tunnelHandleNode(h.spec.handleID);
    if (n) referenced.add(n);
  }
  const parsed = input.blocks.map((b) => new AllocationBlock(b.spec));
  for (const b of parsed) {
    const host = hostOf(b.spec);
    if (host) referenced.add(host);
    for (const a of b.allocated()) {
      if (a.attr.secondary?.node) referenced.add(a.attr.secondary.node);
      const tn = tunnelHandleNode(a.attr.handle_id);
      if (tn) referenced.add(tn);
    }
  }
  const deletedNodes: string[] = [];
  const goneNodes = new Set<string>();
  for (const n of [...referenced].sort()) {
    if (owners.nodes.has(n)) continue;
    goneNodes.add(n);
    if (observe(nodeKey(n)).due) deletedNodes.push(n);
  }
  const confirmedDeleted = new Set(deletedNodes);

  const candidates: GcCandidate[] = [];
  const releases: GcCandidate[] = [];
  const allocatedHandles = new Set<string>();
  for (const b of parsed) {
    for (const a of b.allocated()) {
      const handle = a.attr.handle_id ?? null;
      if (handle) allocatedHandles.add(handle);
      const attrs = a.attr.secondary;
      const tunnelNode = tunnelHandleNode(handle);
      const container = tunnelNode === undefined ? allocationContainer(handle, attrs) : undefined;
      const node = tunnelNode ?? attrs?.node;
      let reason: GcReason | undefined;
      const podKey = attrs?.namespace && attrs.pod ? `${attrs.namespace}/${attrs.pod}` : undefined;
      if (node !== undefined && goneNodes.has(node)) reason = 'node-deleted';
      else if (tunnelNode === undefined && owners.pods && podKey !== undefined) reason = ownerVerdict(owners.pods.get(podKey), a.ip);
      else if (container !== undefined) reason = ownerVerdict(owners.containers.get(container), a.ip);
      if (reason === undefined) continue;
      const seq = b.spec.sequenceNumberForAllocation?.[String(a.ordinal)] ?? null;
      const obs = observe(allocKey(b.spec.cidr, a.ordinal, seq, handle));
      const c: GcCandidate = { ip: a.ip, block: b.spec.cidr, ordinal: a.ordinal, handle, sequenceNumber: seq, reason, since: obs.since };
      candidates.push(c);
      if (obs.due) releases.push(c);
    }
  }

  const affinityReleases = input.affinities
    .filter((a) => confirmedDeleted.has(a.spec.node))
    .map((a) => ({ node: a.spec.node, cidr: a.spec.cidr }))
    .sort((x, y) => x.node.localeCompare(y.node) || x.cidr.localeCompare(y.cidr));
  const handleCleanups = input.handles
    .map((h) => h.spec.handleID)
    .filter((h) => {
      const n = tunnelHandleNode(h);
      return n !== undefined && confirmedDeleted.has(n) && !allocatedHandles.has(h);
    })
    .sort();
  return { state, candidates, releases, deletedNodes, affinityReleases, handleCleanups };
}

// ------------------------------------------------------------------ owner snapshots (pure)

/** Owners from WorkloadEndpoints (`spec.containerID`, `spec.ipNetworks`) and Node names (etcd). */
export function ownersFromWorkloadEndpoints(
  weps: ReadonlyArray<{ spec?: { containerID?: string | undefined; ipNetworks?: string[] | undefined } | undefined }>,
  nodes: Iterable<string>,
): GcOwners {
  const containers = new Map<string, Set<string>>();
  for (const w of weps) {
    const cid = w.spec?.containerID;
    if (!cid) continue;
    const ips = containers.get(cid) ?? new Set<string>();
    for (const n of w.spec?.ipNetworks ?? []) ips.add(bareIp(n));
    containers.set(cid, ips);
  }
  return { nodes: new Set(nodes), containers };
}

export interface PodLike {
  metadata?: { name?: string | undefined; namespace?: string | undefined; annotations?: Record<string, string> | undefined } | undefined;
  status?: { podIP?: string | undefined; podIPs?: Array<{ ip?: string | undefined }> | undefined } | undefined;
}

/** Annotation the CNI plugin stamps on a pod with its sandbox container ID (Calico's name). */
export const POD_CONTAINER_ID_ANNOTATION = 'cni.projectcalico.org/containerID';

/** Owners from pods (Kubernetes): by `<namespace>/<name>` and by the containerID annotation. */
export function ownersFromPods(pods: readonly PodLike[], nodes: Iterable<string>): GcOwners {
  const byName = new Map<string, Set<string>>();
  const containers = new Map<string, Set<string>>();
  for (const p of pods) {
    const ips = new Set<string>();
    for (const x of p.status?.podIPs ?? []) if (x.ip) ips.add(bareIp(x.ip));
    if (p.status?.podIP) ips.add(bareIp(p.status.podIP));
    if (p.metadata?.name) byName.set(`${p.metadata.namespace ?? 'default'}/${p.metadata.name}`, ips);
    const cid = p.metadata?.annotations?.[POD_CONTAINER_ID_ANNOTATION];
    if (cid) containers.set(cid, ips);
  }
  return { nodes: new Set(nodes), containers, pods: byName };
}
