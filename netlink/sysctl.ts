/**
 * sysctl helpers for /proc/sys/net inside a network namespace. /proc/sys/net shows the namespace of
 * the thread that opens the file, so the file operations run synchronously inside withNetns().
 * Keys are dotted ("net.ipv4.conf.all.forwarding") or segment arrays when a segment contains a dot
 * (["net", "ipv4", "conf", "vxlan.calico", "rp_filter"]).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { NetlinkInputError } from './errors.js';
import { withNetns } from './socket.js';

export type SysctlKey = string | string[];

export function sysctlPath(key: SysctlKey): string {
  const parts = Array.isArray(key) ? key : key.split('.');
  if (parts.length < 2 || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('/'))) throw new NetlinkInputError(`bad sysctl key ${JSON.stringify(key)}`);
  return `/proc/sys/${parts.join('/')}`;
}

const inNs = <T>(netns: string | undefined, fn: () => T): T => (netns ? withNetns(netns, fn) : fn());

/** Reads a sysctl (trimmed), in `netns` when given. */
export function sysctlGet(key: SysctlKey, netns?: string): string {
  const path = sysctlPath(key);
  return inNs(netns, () => readFileSync(path, 'utf8').trim());
}

/** Writes a sysctl, in `netns` when given. */
export function sysctlSet(key: SysctlKey, value: string | number, netns?: string): void {
  const path = sysctlPath(key);
  inNs(netns, () => writeFileSync(path, `${value}\n`));
}

/** Writes several sysctls with a single namespace switch. */
export function sysctlSetMany(values: Array<[SysctlKey, string | number]>, netns?: string): void {
  const paths = values.map(([k, v]) => [sysctlPath(k), v] as const);
  inNs(netns, () => {
    for (const [p, v] of paths) writeFileSync(p, `${v}\n`);
  });
}
