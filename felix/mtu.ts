/**
 * MTU: host MTU from the uplinks, pod MTU = smallest MTU of the enabled encapsulations (host minus
 * overhead, or the FELIX_*MTU override), else the host MTU; written to `<lib_dir>/mtu` for the CNI plugin.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Link } from '../netlink/index.js';

/** Calico's default MTUIfacePattern. */
export const MTU_IFACE_PATTERN = /^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)/;
export const DEFAULT_HOST_MTU = 1460;
export const ENCAP_OVERHEAD = { none: 0, ipip: 20, vxlan: 50, vxlanV6: 70 } as const;

/** Smallest MTU among up interfaces matching `pattern` (DEFAULT_HOST_MTU when none). */
export function hostMtu(links: readonly Pick<Link, 'name' | 'up' | 'mtu'>[], pattern: RegExp = MTU_IFACE_PATTERN): number {
  const mtus = links.filter((l) => l.up && l.mtu !== undefined && pattern.test(l.name)).map((l) => l.mtu as number);
  return mtus.length ? Math.min(...mtus) : DEFAULT_HOST_MTU;
}

export interface MtuInputs {
  hostMtu: number;
  ipip: boolean;
  vxlan: boolean;
  /** FelixConfiguration ipipMTU / vxlanMTU overrides (0/undefined = auto). */
  ipipMTU?: number;
  vxlanMTU?: number;
  /** An IPv6 pool uses VXLAN (vxlan-v6.calico, overhead 70). */
  vxlan6?: boolean;
  vxlanMTUV6?: number;
}

export interface Mtus {
  ipip: number;
  vxlan: number;
  vxlan6: number;
  pod: number;
}

export function computeMtus(i: MtuInputs): Mtus {
  const ipip = i.ipipMTU || i.hostMtu - ENCAP_OVERHEAD.ipip;
  const vxlan = i.vxlanMTU || i.hostMtu - ENCAP_OVERHEAD.vxlan;
  const vxlan6 = i.vxlanMTUV6 || i.hostMtu - ENCAP_OVERHEAD.vxlanV6;
  const enabled = [...(i.ipip ? [ipip] : []), ...(i.vxlan ? [vxlan] : []), ...(i.vxlan6 ? [vxlan6] : [])];
  return { ipip, vxlan, vxlan6, pod: enabled.length ? Math.min(...enabled) : i.hostMtu };
}

/** Writes `<libDir>/mtu` atomically (temp file + rename): the CNI plugin never reads a partial file. */
export async function writeMtuFile(libDir: string, mtu: number): Promise<string> {
  await mkdir(libDir, { recursive: true });
  const path = join(libDir, 'mtu');
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${mtu}\n`, { mode: 0o644 });
  await rename(tmp, path);
  return path;
}
