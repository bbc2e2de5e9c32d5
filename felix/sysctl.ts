/**
 * Sysctls felix owns: forwarding for the node, and per workload interface proxy-ARP (the pod's default
 * gateway 169.254.1.1 is answered by the host side) / proxy-NDP. Pure lists + one injectable writer.
 */
import { sysctlSetMany, type SysctlKey } from '../netlink/index.js';

export type SysctlSetting = [SysctlKey, string];

/** Node-wide: IPv4 forwarding (and IPv6 when enabled). */
export function nodeSysctls(ipv6: boolean): SysctlSetting[] {
  const out: SysctlSetting[] = [['net.ipv4.ip_forward', '1']];
  if (ipv6) out.push(['net.ipv6.conf.all.forwarding', '1']);
  return out;
}

/** Host side of a workload veth (Calico's endpoint manager values). Interface names go as path parts. */
export function workloadSysctls(iface: string, ipv6: boolean): SysctlSetting[] {
  const out: SysctlSetting[] = [
    [['net', 'ipv4', 'conf', iface, 'forwarding'], '1'],
    [['net', 'ipv4', 'conf', iface, 'rp_filter'], '1'],
    [['net', 'ipv4', 'conf', iface, 'route_localnet'], '1'],
    [['net', 'ipv4', 'conf', iface, 'proxy_arp'], '1'],
    [['net', 'ipv4', 'neigh', iface, 'proxy_delay'], '0'],
  ];
  if (ipv6) {
    out.push([['net', 'ipv6', 'conf', iface, 'disable_ipv6'], '0']);
    out.push([['net', 'ipv6', 'conf', iface, 'accept_ra'], '0']);
    out.push([['net', 'ipv6', 'conf', iface, 'forwarding'], '1']);
    out.push([['net', 'ipv6', 'conf', iface, 'proxy_ndp'], '1']);
  }
  return out;
}

/** VXLAN/IPIP devices: no reverse-path filter (asymmetric tunnel paths). */
export function tunnelSysctls(iface: string): SysctlSetting[] {
  return [[['net', 'ipv4', 'conf', iface, 'rp_filter'], '0']];
}

export type SysctlWriter = (settings: SysctlSetting[]) => void;

/** Writes through /proc/sys in `netns` (undefined = ours). */
export function procSysctlWriter(netns?: string): SysctlWriter {
  return (settings) => sysctlSetMany(settings, netns);
}
