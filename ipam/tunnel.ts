/**
 * Node tunnel addresses (Calico `node/pkg/allocateip`): one address per node and tunnel type,
 * allocated with IntendedUse Tunnel under the handle `<type>-tunnel-addr-<node>` and attribute
 * `type: <type>TunnelAddress`. tabby-node calls ensureTunnelAddress at start-up and writes the
 * result to the Node resource (e.g. `bgp.ipv4IPIPTunnelAddr`).
 */
import { cidrContains, parseIp } from './cidr.js';
import type { Ipam } from './ipam.js';

export type TunnelType = 'ipip' | 'vxlan' | 'vxlan-v6' | 'wireguard' | 'wireguard-v6';

const ATTR_TYPE: Record<TunnelType, string> = {
  ipip: 'ipipTunnelAddress',
  vxlan: 'vxlanTunnelAddress',
  'vxlan-v6': 'vxlanV6TunnelAddress',
  wireguard: 'wireguardTunnelAddress',
  'wireguard-v6': 'wireguardV6TunnelAddress',
};

export function tunnelHandle(type: TunnelType, node: string): string {
  return `${type}-tunnel-addr-${node}`;
}

/**
 * The node's tunnel address for `type`: the one it already has when that is still inside an
 * enabled pool that allows Tunnel use (and, when given, one of `pools`), else a fresh one (the old
 * one is released). `pools` restricts the choice (e.g. only IPIP-enabled pools).
 */
export async function ensureTunnelAddress(ipam: Ipam, node: string, type: TunnelType, pools?: string[]): Promise<string> {
  const handleId = tunnelHandle(type, node);
  const v6 = type.endsWith('-v6');
  const usable = (await ipam.pools()).filter(
    (p) => !p.disabled && p.allowedUses.includes('Tunnel') && (!pools || pools.length === 0 || pools.includes(p.name) || pools.includes(p.cidrText)),
  );
  const have = await ipam.ipsByHandle(handleId);
  const keep = have.find((a) => {
    const { family, value } = parseIp(a.ip);
    return usable.some((p) => cidrContains(p.cidr, family, value));
  });
  if (keep && have.length === 1) return keep.ip;
  if (have.length > 0) await ipam.releaseByHandle(handleId, node);
  const r = await ipam.autoAssign({
    num4: v6 ? 0 : 1,
    num6: v6 ? 1 : 0,
    handleId,
    hostname: node,
    intendedUse: 'Tunnel',
    attrs: { node, type: ATTR_TYPE[type] },
    ...(pools && pools.length > 0 ? (v6 ? { ipv6Pools: pools } : { ipv4Pools: pools }) : {}),
  });
  return (v6 ? r.ipv6[0] : r.ipv4[0])!.ip;
}

/** Release the node's tunnel address of `type` (tunnel mode turned off). Returns how many were freed. */
export function releaseTunnelAddress(ipam: Ipam, node: string, type: TunnelType): Promise<number> {
  return ipam.releaseByHandle(tunnelHandle(type, node), node);
}
