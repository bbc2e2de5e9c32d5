/**
 * Tunnel addresses as calico-node: when an enabled pool that selects this node uses VXLAN (or IPIP),
 * this node gets one address from such a pool (IPAM handle `vxlan-tunnel-addr-<node>` /
 * `ipip-tunnel-addr-<node>`), stored in Node.spec.ipv4VXLANTunnelAddr / spec.bgp.ipv4IPIPTunnelAddr.
 * An address no longer needed (or outside every such pool) is released.
 */
import { cidrContains, parseCidr, parseIP } from '../api/net.js';
import { parseSelector } from '../api/selector.js';
import type { IPPool, Node } from '../api/types.js';
import { ConflictError, type Datastore } from '../datastore/types.js';
import type { Ipam } from '../ipam/ipam.js';
import type { Logger } from '../lib/log.js';

type Kind = 'vxlan' | 'ipip';

function poolsFor(kind: Kind, pools: readonly IPPool[], labels: Record<string, string>): IPPool[] {
  return pools.filter((p) => {
    if (p.spec.disabled || p.spec.cidr.includes(':')) return false;
    const mode = kind === 'vxlan' ? p.spec.vxlanMode : p.spec.ipipMode;
    if ((mode ?? 'Never') === 'Never') return false;
    try {
      return parseSelector(p.spec.nodeSelector ?? 'all()').matches(labels);
    } catch {
      return false;
    }
  });
}

function get(node: Node, kind: Kind): string | undefined {
  return kind === 'vxlan' ? node.spec?.ipv4VXLANTunnelAddr : node.spec?.bgp?.ipv4IPIPTunnelAddr;
}

function set(node: Node, kind: Kind, addr: string | undefined): void {
  node.spec ??= {};
  if (kind === 'vxlan') {
    if (addr) node.spec.ipv4VXLANTunnelAddr = addr;
    else delete node.spec.ipv4VXLANTunnelAddr;
  } else {
    node.spec.bgp ??= {};
    if (addr) node.spec.bgp.ipv4IPIPTunnelAddr = addr;
    else delete node.spec.bgp.ipv4IPIPTunnelAddr;
  }
}

/** Ensure both tunnel addresses match the pools; returns the (possibly updated) Node. */
export async function ensureTunnelAddresses(ds: Datastore, ipam: Ipam, nodeName: string, log: Logger): Promise<Node> {
  for (let attempt = 0; ; attempt++) {
    const node = await ds.get<Node>('Node', nodeName);
    const pools = (await ds.list<IPPool>('IPPool')).items;
    const next = structuredClone(node);
    for (const kind of ['vxlan', 'ipip'] as const) {
      const handleId = `${kind}-tunnel-addr-${nodeName}`;
      const want = poolsFor(kind, pools, node.metadata.labels ?? {});
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
      const res = await ipam.autoAssign({
        num4: 1,
        handleId,
        hostname: nodeName,
        attrs: { node: nodeName, type: kind === 'vxlan' ? 'vxlanTunnelAddress' : 'ipipTunnelAddress' },
        ipv4Pools: want.map((p) => p.metadata.name),
        intendedUse: 'Tunnel',
      });
      const got = res.ipv4[0];
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
