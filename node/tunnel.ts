/**
 * Tunnel addresses as calico-node: when an enabled pool that selects this node uses VXLAN (or IPIP),
 * this node gets one address from such a pool (IPAM handle `vxlan-tunnel-addr-<node>` /
 * `ipip-tunnel-addr-<node>`), stored in Node.spec.ipv4VXLANTunnelAddr / spec.bgp.ipv4IPIPTunnelAddr.
 * IPv6 VXLAN pools give a node with an IPv6 address `spec.ipv6VXLANTunnelAddr` (handle
 * `vxlan-v6-tunnel-addr-<node>`). An address no longer needed (or outside every such pool) is released.
 */
import { cidrContains, parseCidr, parseIP } from '../api/net.js';
import { parseSelector } from '../api/selector.js';
import type { IPPool, Node } from '../api/types.js';
import { ConflictError, type Datastore } from '../datastore/types.js';
import type { Ipam } from '../ipam/ipam.js';
import type { Logger } from '../lib/log.js';

type Kind = 'vxlan' | 'ipip' | 'vxlan6';

const HANDLE: Record<Kind, string> = { vxlan: 'vxlan-tunnel-addr', ipip: 'ipip-tunnel-addr', vxlan6: 'vxlan-v6-tunnel-addr' };
const ATTR_TYPE: Record<Kind, string> = { vxlan: 'vxlanTunnelAddress', ipip: 'ipipTunnelAddress', vxlan6: 'vxlanV6TunnelAddress' };

function poolsFor(kind: Kind, pools: readonly IPPool[], labels: Record<string, string>): IPPool[] {
  return pools.filter((p) => {
    if (p.spec.disabled || p.spec.cidr.includes(':') !== (kind === 'vxlan6')) return false;
    const mode = kind === 'ipip' ? p.spec.ipipMode : p.spec.vxlanMode;
    if ((mode ?? 'Never') === 'Never') return false;
    try {
      return parseSelector(p.spec.nodeSelector ?? 'all()').matches(labels);
    } catch {
      return false;
    }
  });
}

function get(node: Node, kind: Kind): string | undefined {
  return kind === 'vxlan' ? node.spec?.ipv4VXLANTunnelAddr : kind === 'vxlan6' ? node.spec?.ipv6VXLANTunnelAddr : node.spec?.bgp?.ipv4IPIPTunnelAddr;
}

function set(node: Node, kind: Kind, addr: string | undefined): void {
  node.spec ??= {};
  if (kind === 'vxlan6') {
    if (addr) node.spec.ipv6VXLANTunnelAddr = addr;
    else delete node.spec.ipv6VXLANTunnelAddr;
  } else if (kind === 'vxlan') {
    if (addr) node.spec.ipv4VXLANTunnelAddr = addr;
    else delete node.spec.ipv4VXLANTunnelAddr;
  } else {
    node.spec.bgp ??= {};
    if (addr) node.spec.bgp.ipv4IPIPTunnelAddr = addr;
    else delete node.spec.bgp.ipv4IPIPTunnelAddr;
  }
}

/**
 * Ensure both tunnel addresses match the pools; returns the (possibly updated) Node. `current`: the
 * Node and pools the caller has just read (startup), used for the first attempt instead of reading
 * them again; a lost compare-and-swap re-reads both.
 */
export async function ensureTunnelAddresses(ds: Datastore, ipam: Ipam, nodeName: string, log: Logger, current?: { node: Node; pools: readonly IPPool[] }): Promise<Node> {
  for (let attempt = 0; ; attempt++) {
    const node = attempt === 0 && current ? current.node : await ds.get<Node>('Node', nodeName);
    const pools = attempt === 0 && current ? current.pools : (await ds.list<IPPool>('IPPool')).items;
    const next = structuredClone(node);
    for (const kind of ['vxlan', 'ipip', 'vxlan6'] as const) {
      const handleId = `${HANDLE[kind]}-${nodeName}`;
      // A tunnel address of a family only for a node with an address of that family (the underlay).
      const underlay = kind === 'vxlan6' ? node.spec?.bgp?.ipv6Address : node.spec?.bgp?.ipv4Address;
      const want = underlay ? poolsFor(kind, pools, node.metadata.labels ?? {}) : [];
      const have = get(node, kind);
      const ip = have ? parseIP(have) : undefined;
      const inside = ip !== undefined && want.some((p) => cidrContains(parseCidr(p.spec.cidr)!, ip));
      if (want.length === 0) {
        if (have) {
          await ipam.releaseByHandle(handleId, nodeName);
          set(next, kind, undefined);
          log.info({ kind, address: have }, 'released the tunnel address (no pool needs it)');
        }
        continue;
      }
      if (inside) continue;
      await ipam.releaseByHandle(handleId, nodeName); // also what a lost CAS below left behind
      const v6 = kind === 'vxlan6';
      const names = want.map((p) => p.metadata.name);
      const res = await ipam.autoAssign({
        ...(v6 ? { num4: 0, num6: 1, ipv6Pools: names } : { num4: 1, ipv4Pools: names }),
        handleId,
        hostname: nodeName,
        attrs: { node: nodeName, type: ATTR_TYPE[kind] },
        intendedUse: 'Tunnel',
      });
      const got = (v6 ? res.ipv6 : res.ipv4)[0];
      if (!got) throw new Error(`no ${kind} tunnel address available in ${want.map((p) => p.spec.cidr).join(',')}`);
      set(next, kind, got.ip);
      log.info({ kind, address: got.ip, block: got.block }, 'allocated the tunnel address');
    }
    if (JSON.stringify(next.spec) === JSON.stringify(node.spec)) return node;
    try {
      return await ds.update(next);
    } catch (err) {
      if (err instanceof ConflictError && attempt < 5) continue;
      throw err;
    }
  }
}
