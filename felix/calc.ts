/**
 * Pure desired-state calculation: node, workloads, blocks, pools → routes + VXLAN peers.
 *
 *   workloads ──► `<ip>/32 dev caliX scope link`
 *   own blocks ─► `blackhole <block>`
 *   remote blocks ─► pool of the block ─► Never            → `via <nodeIP> [dev <parent>]`
 *                                       ├► IPIP           → `via <nodeIP> dev tunl0 onlink`
 *                                       ├► VXLAN          → `via <VTEP IP> dev vxlan.calico onlink` + ARP/FDB
 *                                       │                   (IPv6 blocks: dev vxlan-v6.calico, NDP/FDB)
 *                                       └► CrossSubnet    → direct when the node shares our subnet, else tunnel
 *
 * No I/O, no clocks: the same inputs always give the same output (sorted by dst).
 */
import { createHash } from 'node:crypto';
import { canonicalCidr, cidrContains, ipToString, parseCidr, parseIP, type ParsedCidr } from '../api/net.js';
import { DEFAULT_NAMES, type DataplaneNames, type DesiredInputs, type DesiredRoute, type DesiredState, type NodeInput, type PoolInput, type VxlanPeer } from './model.js';

/** Calico's VTEP MAC: "f" (0x66, locally administered unicast) + the first 5 bytes of SHA-1(nodename). */
export function vtepMac(nodeName: string, ipv6 = false): string {
  const sha = createHash('sha1').update(ipv6 ? `${nodeName}-v6` : nodeName).digest();
  return [0x66, ...sha.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** `10.0.0.5/24` or `10.0.0.5` → `10.0.0.5`. */
export function hostPart(addr: string): string {
  const slash = addr.indexOf('/');
  return slash < 0 ? addr : addr.slice(0, slash);
}

function poolOf(pools: Array<{ pool: PoolInput; net: ParsedCidr }>, block: ParsedCidr): PoolInput | undefined {
  let best: { pool: PoolInput; net: ParsedCidr } | undefined;
  for (const p of pools) {
    if (p.net.family !== block.family || p.net.prefix > block.prefix || !cidrContains(p.net, block.addr)) continue;
    if (!best || p.net.prefix > best.net.prefix) best = p;
  }
  return best?.pool;
}

/** True when `ip` lies in the subnet of `selfCidr` (this node's address in CIDR form). */
export function sameSubnet(selfCidr: string | undefined, ip: string): boolean {
  const net = selfCidr ? parseCidr(selfCidr) : undefined;
  const addr = parseIP(hostPart(ip));
  return !!net && !!addr && cidrContains(net, addr);
}

type Encap = 'none' | 'ipip' | 'vxlan';

/** Encapsulation toward a node at `nodeIp` for a block of `pool`. */
export function encapFor(pool: PoolInput | undefined, selfCidr: string | undefined, nodeIp: string): Encap {
  if (!pool) return 'none';
  const mode = (m: PoolInput['ipipMode']): boolean => m === 'Always' || (m === 'CrossSubnet' && !sameSubnet(selfCidr, nodeIp));
  if (mode(pool.vxlanMode)) return 'vxlan';
  if (mode(pool.ipipMode)) return 'ipip';
  return 'none';
}

/**
 * FELIX_IPV6SUPPORT=false: felix leaves IPv6 alone, as Calico's — no /128 workload routes, no IPv6
 * blackholes or remote blocks, no ip6 NAT table (the pools it would come from are dropped).
 */
export function withoutIPv6(input: DesiredInputs): DesiredInputs {
  const v4 = (cidr: string): boolean => !cidr.includes(':');
  return {
    ...input,
    workloads: input.workloads.map((w) => ({ ...w, ipNetworks: w.ipNetworks.filter(v4) })),
    localBlocks: input.localBlocks.filter(v4),
    remoteBlocks: input.remoteBlocks.filter((b) => v4(b.cidr)),
    pools: input.pools.filter((p) => v4(p.cidr)),
  };
}

export function calculate(input: DesiredInputs, names: DataplaneNames = DEFAULT_NAMES): DesiredState {
  const warnings: string[] = [];
  const routes = new Map<string, DesiredRoute>();
  const peers = new Map<string, VxlanPeer>();
  const peers6 = new Map<string, VxlanPeer>();
  const add = (r: DesiredRoute): void => {
    if (!routes.has(r.dst)) routes.set(r.dst, r);
  };

  // 1. local workloads (highest precedence on a dst clash)
  for (const w of input.workloads) {
    for (const n of w.ipNetworks) {
      const c = parseCidr(n.includes('/') ? n : `${n}/${n.includes(':') ? 128 : 32}`);
      if (!c) {
        warnings.push(`workload ${w.iface}: bad address ${n}`);
        continue;
      }
      add({ dst: `${ipToString(c.addr)}/${c.family === 4 ? 32 : 128}`, kind: 'unicast', dev: w.iface, scope: 'link', reason: 'workload' });
    }
  }

  // 2. blackholes for our confirmed blocks
  for (const b of input.localBlocks) {
    const c = parseCidr(b);
    if (!c) {
      warnings.push(`local block ${b}: bad CIDR`);
      continue;
    }
    add({ dst: canonicalCidr(c), kind: 'blackhole', reason: 'blackhole' });
  }

  // 3. remote blocks
  const pools = input.pools.flatMap((pool) => {
    const net = parseCidr(pool.cidr);
    return net ? [{ pool, net }] : [];
  });
  const nodes = new Map<string, NodeInput>(input.nodes.map((n) => [n.name, n]));
  for (const rb of input.remoteBlocks) {
    if (rb.node === input.self.name) continue;
    const c = parseCidr(rb.cidr);
    if (!c) {
      warnings.push(`remote block ${rb.cidr}: bad CIDR`);
      continue;
    }
    const dst = canonicalCidr(c);
    const node = rb.node === undefined ? undefined : nodes.get(rb.node);
    const nodeAddr = c.family === 4 ? node?.ipv4Address : node?.ipv6Address;
    const nodeIp = rb.nextHop ?? (nodeAddr ? hostPart(nodeAddr) : undefined);
    if (!nodeIp) {
      warnings.push(`remote block ${dst}: no next hop (node ${rb.node ?? '?'} has no IPv${c.family} address)`);
      continue;
    }
    const selfCidr = c.family === 4 ? input.self.ipv4Address : input.self.ipv6Address;
    const e = encapFor(poolOf(pools, c), selfCidr, nodeIp);
    // IPv6 pools: VXLAN only (Calico forbids IPIP on IPv6).
    const encap = c.family === 4 || e === 'vxlan' ? e : 'none';
    if (encap === 'ipip') {
      add({ dst, kind: 'unicast', gw: nodeIp, dev: names.ipipDevice, onlink: true, reason: 'ipip' });
    } else if (encap === 'vxlan') {
      const v6 = c.family === 6;
      const vtep = v6 ? node?.ipv6VXLANTunnelAddr : node?.ipv4VXLANTunnelAddr;
      if (!node || !vtep) {
        warnings.push(`remote block ${dst}: node ${rb.node ?? '?'} has no ${v6 ? 'IPv6 ' : ''}VXLAN tunnel address yet`);
        continue;
      }
      const vtepIp = hostPart(vtep);
      const dev = v6 ? (names.vxlanDeviceV6 ?? DEFAULT_NAMES.vxlanDeviceV6!) : names.vxlanDevice;
      add({ dst, kind: 'unicast', gw: vtepIp, dev, onlink: true, reason: 'vxlan' });
      const mac = (v6 ? (node.vxlanTunnelMACAddrV6 ?? vtepMac(node.name, true)) : (node.vxlanTunnelMACAddr ?? vtepMac(node.name))).toLowerCase();
      (v6 ? peers6 : peers).set(node.name, { node: node.name, vtepIp, mac, hostIp: nodeIp });
    } else {
      const parent = c.family === 6 ? (input.parentIface6 ?? input.parentIface) : input.parentIface;
      add({ dst, kind: 'unicast', gw: nodeIp, ...(parent ? { dev: parent } : {}), reason: 'noencap' });
    }
  }

  const enabled = (m: PoolInput['ipipMode']): boolean => m === 'Always' || m === 'CrossSubnet';
  const v4Pools = input.pools.filter((p) => !p.cidr.includes(':'));
  const byNode = (m: Map<string, VxlanPeer>): VxlanPeer[] => [...m.values()].sort((a, b) => (a.node < b.node ? -1 : 1));
  return {
    routes: [...routes.values()].sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0)),
    vxlanPeers: byNode(peers),
    vxlanPeers6: byNode(peers6),
    needIpip: v4Pools.some((p) => enabled(p.ipipMode)),
    needVxlan: v4Pools.some((p) => enabled(p.vxlanMode)),
    needVxlan6: input.pools.some((p) => p.cidr.includes(':') && enabled(p.vxlanMode)),
    warnings,
  };
}
