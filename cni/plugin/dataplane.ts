/**
 * The pod dataplane tabby needs, as an interface (pure callers, swappable backends), and its checks.
 * The veth pair, addresses, routes and sysctls follow Calico (reference calico.md §3.3).
 */
import { GATEWAY_V4, GATEWAY_V6, HOST_MAC, type PodIp } from './result.js';

export interface SetupParams {
  netns: string;
  ifname: string;
  hostIf: string;
  containerMac: string;
  mtu: number;
  ips: PodIp[];
  /** Stored on the host veth (ifalias) so DEL/GC know the owner. */
  alias: string;
  allowIpForwarding: boolean;
}

/** What exists now, for CHECK. Missing pieces are absent/empty. */
export interface ObservedPod {
  host?: { mac: string; up: boolean; alias?: string; mtu: number };
  /** Host routes via the cali link: dst without prefix length → scope. */
  hostRoutes: Array<{ dst: string; scope: string }>;
  hostSysctls: Record<string, string | undefined>;
  container?: { mac: string; up: boolean; mtu: number; addrs: string[] };
  containerRoutes: Array<{ dst: string; gateway?: string; scope?: string }>;
}

export interface HostLink {
  name: string;
  alias?: string;
}

export interface PodDataplane {
  /** Create the veth pair and configure both ends. Throws DataplaneError; leaves nothing behind on failure. */
  setup(p: SetupParams): Promise<void>;
  /** The host link by name, or undefined. */
  hostLink(name: string): Promise<HostLink | undefined>;
  /** Delete a host link (its peer and routes go with it). Absent is fine. */
  deleteLink(name: string): Promise<void>;
  /** All host links named with the prefix. */
  listHostLinks(prefix: string): Promise<HostLink[]>;
  observe(p: { netns: string; ifname: string; hostIf: string; v6: boolean }): Promise<ObservedPod>;
}

/** Host sysctls per pod link (values as strings, as /proc/sys holds them). */
export function hostSysctls(hostIf: string, v6: boolean): Record<string, string> {
  const s: Record<string, string> = {
    [`net/ipv4/conf/${hostIf}/route_localnet`]: '1',
    [`net/ipv4/neigh/${hostIf}/proxy_delay`]: '0',
    [`net/ipv4/conf/${hostIf}/proxy_arp`]: '1',
    [`net/ipv4/conf/${hostIf}/forwarding`]: '1',
  };
  if (v6) {
    Object.assign(s, {
      [`net/ipv6/conf/${hostIf}/accept_dad`]: '0',
      [`net/ipv6/conf/${hostIf}/disable_ipv6`]: '0',
      [`net/ipv6/conf/${hostIf}/proxy_ndp`]: '1',
      [`net/ipv6/conf/${hostIf}/forwarding`]: '1',
      [`net/ipv6/conf/${hostIf}/accept_ra`]: '0',
    });
  }
  return s;
}

/** Compare what exists with what ADD made; returns the problems (empty = healthy). Pure. */
export function checkPod(want: SetupParams, got: ObservedPod): string[] {
  const problems: string[] = [];
  const v6 = want.ips.some((x) => x.family === 6);
  if (!got.host) problems.push(`host interface ${want.hostIf} is missing`);
  else {
    if (got.host.mac.toLowerCase() !== HOST_MAC) problems.push(`host interface ${want.hostIf} has MAC ${got.host.mac}, want ${HOST_MAC}`);
    if (!got.host.up) problems.push(`host interface ${want.hostIf} is down`);
    if (got.host.alias !== want.alias) problems.push(`host interface ${want.hostIf} belongs to ${got.host.alias ?? 'nobody'}, want ${want.alias}`);
  }
  for (const ip of want.ips) {
    const r = got.hostRoutes.find((x) => x.dst === ip.ip || x.dst === `${ip.ip}/${ip.family === 4 ? 32 : 128}`);
    if (!r) problems.push(`host route ${ip.ip} dev ${want.hostIf} is missing`);
    else if (ip.family === 4 && r.scope !== 'link') problems.push(`host route ${ip.ip} has scope ${r.scope}, want link`);
  }
  for (const [k, v] of Object.entries(hostSysctls(want.hostIf, v6))) {
    if (got.hostSysctls[k] !== v) problems.push(`sysctl ${k.replaceAll('/', '.')} is ${got.hostSysctls[k] ?? 'absent'}, want ${v}`);
  }
  if (!got.container) problems.push(`interface ${want.ifname} is missing in ${want.netns}`);
  else {
    if (!got.container.up) problems.push(`interface ${want.ifname} is down`);
    if (got.container.mtu !== want.mtu) problems.push(`interface ${want.ifname} has MTU ${got.container.mtu}, want ${want.mtu}`);
    if (got.container.mac.toLowerCase() !== want.containerMac.toLowerCase()) problems.push(`interface ${want.ifname} has MAC ${got.container.mac}, want ${want.containerMac}`);
    for (const ip of want.ips) {
      const cidr = `${ip.ip}/${ip.family === 4 ? 32 : 128}`;
      if (!got.container.addrs.includes(cidr)) problems.push(`address ${cidr} is missing on ${want.ifname}`);
    }
  }
  if (want.ips.some((x) => x.family === 4)) {
    const gw = got.containerRoutes.find((r) => r.dst === GATEWAY_V4 || r.dst === `${GATEWAY_V4}/32`);
    if (!gw || gw.scope !== 'link') problems.push(`route ${GATEWAY_V4}/32 scope link is missing on ${want.ifname}`);
    if (!got.containerRoutes.some((r) => (r.dst === 'default' || r.dst === '0.0.0.0/0') && r.gateway === GATEWAY_V4)) {
      problems.push(`default route via ${GATEWAY_V4} is missing on ${want.ifname}`);
    }
  }
  if (v6 && !got.containerRoutes.some((r) => (r.dst === 'default' || r.dst === '::/0') && r.gateway === GATEWAY_V6)) {
    problems.push(`default route via ${GATEWAY_V6} is missing on ${want.ifname}`);
  }
  return problems;
}
