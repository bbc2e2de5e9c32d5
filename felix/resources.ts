/**
 * Datastore resources (+ BGP-learned routes) → DesiredInputs. Pure: the tabby-node agent keeps the
 * current lists from its watches and calls this on every change, then `Dataplane.update()`.
 *
 * - local blocks = this node's *confirmed* host affinities (legacy empty state counts as confirmed);
 * - remote blocks = blocks with `affinity: host:<other>`, plus borrowed /32s: a workload on node X
 *   whose IP lies in a block affine to another node is routed to X (Calico's l3 route resolver);
 * - BGP routes give next hops: a learned prefix equal to a known block sets its next hop (unless it
 *   is the owner's own address, which the datastore already gives: the inputs stay the same), any
 *   other learned prefix is added with the node that owns the next-hop address (when one does).
 */
import type { BlockAffinity, IPAMBlock, IPPool, Node, WorkloadEndpoint } from '../api/types.js';
import { canonicalCidr, canonicalCidrText, cidrContains, parseCidr, parseIP } from '../api/net.js';
import { hostPart } from './calc.js';
import type { DesiredInputs, NodeInput, RemoteBlockInput } from './model.js';

export interface ResourceView {
  nodeName: string;
  parentIface?: string;
  /** The interface IPv6 autodetection chose, when it differs from parentIface. */
  parentIface6?: string;
  nodes: readonly Node[];
  pools: readonly IPPool[];
  blocks: readonly IPAMBlock[];
  affinities: readonly BlockAffinity[];
  workloadEndpoints: readonly WorkloadEndpoint[];
  /** Prefixes learned over BGP and their next hops. */
  bgpRoutes?: ReadonlyArray<{ cidr: string; nextHop: string }>;
}

export function nodeInput(n: Node): NodeInput {
  const out: NodeInput = { name: n.metadata.name };
  const s = n.spec ?? {};
  if (s.bgp?.ipv4Address) out.ipv4Address = s.bgp.ipv4Address;
  if (s.bgp?.ipv6Address) out.ipv6Address = s.bgp.ipv6Address;
  if (s.bgp?.ipv4IPIPTunnelAddr) out.ipv4IPIPTunnelAddr = s.bgp.ipv4IPIPTunnelAddr;
  if (s.ipv4VXLANTunnelAddr) out.ipv4VXLANTunnelAddr = s.ipv4VXLANTunnelAddr;
  if (s.vxlanTunnelMACAddr) out.vxlanTunnelMACAddr = s.vxlanTunnelMACAddr;
  if (s.ipv6VXLANTunnelAddr) out.ipv6VXLANTunnelAddr = s.ipv6VXLANTunnelAddr;
  if (s.vxlanTunnelMACAddrV6) out.vxlanTunnelMACAddrV6 = s.vxlanTunnelMACAddrV6;
  return out;
}

const hostOf = (affinity: string | null | undefined): string | undefined => (affinity?.startsWith('host:') ? affinity.slice(5) : undefined);

/** The address the datastore gives `node` for a prefix of that family (host part), if any. */
function nodeHop(nodes: ReadonlyMap<string, NodeInput>, node: string | undefined, cidr: string): string | undefined {
  const n = node === undefined ? undefined : nodes.get(node);
  const a = cidr.includes(':') ? n?.ipv6Address : n?.ipv4Address;
  return a ? hostPart(a) : undefined;
}

/**
 * The next hop the datastore alone implies for each remote block (its owner's address), by
 * canonical CIDR. A learned best path to one of these prefixes with this very next hop changes
 * nothing in `inputsFromResources`' result: the agent skips the dataplane work for it.
 */
export function impliedNextHops(v: Pick<ResourceView, 'nodeName' | 'nodes' | 'blocks'>): Map<string, string> {
  const nodes = new Map(v.nodes.map((n) => [n.metadata.name, nodeInput(n)]));
  const out = new Map<string, string>();
  for (const b of v.blocks) {
    const node = hostOf(b.spec.affinity);
    if (!node || node === v.nodeName || b.spec.deleted) continue;
    const cidr = canonicalCidrText(b.spec.cidr);
    if (!cidr) continue;
    const hop = nodeHop(nodes, node, cidr);
    if (hop) out.set(cidr, hop);
  }
  return out;
}

export function inputsFromResources(v: ResourceView): DesiredInputs {
  const nodes = v.nodes.map(nodeInput);
  const self = nodes.find((n) => n.name === v.nodeName) ?? { name: v.nodeName };

  const localBlocks = v.affinities
    .filter((a) => a.spec.node === v.nodeName && (a.spec.state === 'confirmed' || a.spec.state === '') && a.spec.deleted !== 'true' && (a.spec.type ?? 'host') !== 'virtual')
    .map((a) => a.spec.cidr);

  const owned = v.blocks.flatMap((b) => {
    const node = hostOf(b.spec.affinity);
    const c = parseCidr(b.spec.cidr);
    return node && c && !b.spec.deleted ? [{ cidr: canonicalCidr(c), net: c, node }] : [];
  });
  const remote = new Map<string, RemoteBlockInput>();
  for (const b of owned) if (b.node !== v.nodeName) remote.set(b.cidr, { cidr: b.cidr, node: b.node });

  const workloads: DesiredInputs['workloads'] = [];
  for (const w of v.workloadEndpoints) {
    const node = w.spec.node;
    const ips = w.spec.ipNetworks ?? [];
    if (node === v.nodeName) {
      if (w.spec.interfaceName) workloads.push({ iface: w.spec.interfaceName, ipNetworks: ips });
      continue;
    }
    if (!node) continue;
    for (const n of ips) {
      const ip = parseIP(hostPart(n));
      if (!ip) continue;
      const block = owned.find((b) => b.net.family === (ip.kind() === 'ipv4' ? 4 : 6) && cidrContains(b.net, ip));
      if (block && block.node !== node) {
        const cidr = `${hostPart(n)}/${ip.kind() === 'ipv4' ? 32 : 128}`;
        remote.set(cidr, { cidr, node });
      }
    }
  }

  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const r of v.bgpRoutes ?? []) {
    const c = parseCidr(r.cidr);
    if (!c) continue;
    const cidr = canonicalCidr(c);
    const known = remote.get(cidr);
    if (known) {
      if (r.nextHop !== nodeHop(byName, known.node, cidr)) known.nextHop = r.nextHop;
      continue;
    }
    if (localBlocks.includes(cidr)) continue;
    const owner = nodes.find((n) => (n.ipv4Address && hostPart(n.ipv4Address) === r.nextHop) || (n.ipv6Address && hostPart(n.ipv6Address) === r.nextHop));
    if (owner?.name === v.nodeName) continue;
    remote.set(cidr, { cidr, nextHop: r.nextHop, ...(owner ? { node: owner.name } : {}) });
  }

  return {
    self,
    ...(v.parentIface !== undefined ? { parentIface: v.parentIface } : {}),
    ...(v.parentIface6 !== undefined && v.parentIface6 !== v.parentIface ? { parentIface6: v.parentIface6 } : {}),
    workloads,
    localBlocks,
    remoteBlocks: [...remote.values()],
    pools: v.pools.map((p) => ({
      cidr: p.spec.cidr,
      ...(p.spec.ipipMode ? { ipipMode: p.spec.ipipMode } : {}),
      ...(p.spec.vxlanMode ? { vxlanMode: p.spec.vxlanMode } : {}),
      ...(p.spec.natOutgoing !== undefined ? { natOutgoing: p.spec.natOutgoing } : {}),
      ...(p.spec.disabled !== undefined ? { disabled: p.spec.disabled } : {}),
    })),
    nodes,
  };
}
