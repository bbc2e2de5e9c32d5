/**
 * The VXLAN device (`vxlan.calico`: VNI 4096, port 4789, VTEP MAC from the node name, MTU host−50,
 * address = the node's VXLAN tunnel IP/32) and its static neighbours: a permanent ARP entry
 * remote-VTEP-IP → VTEP-MAC and a bridge FDB entry VTEP-MAC → remote host IP per remote node.
 * IPv6 (`vxlan-v6.calico`, MTU host−70): the same with /128, NDP entries and IPv6 underlay addresses.
 * Neighbour entries on the device that are not desired are removed (the device is ours).
 */
import { AF, LinkNotFoundError, NTF, NUD, type Link, type Neigh } from '../netlink/index.js';
import type { VxlanPeer } from './model.js';
import { ensureSoleAddress, type DataplaneNetlink } from './shim.js';

export const VXLAN_VNI = 4096;
export const VXLAN_PORT = 4789;

export interface VxlanDeviceSpec {
  name: string;
  /** The node's VXLAN tunnel address (no prefix). */
  tunnelIp: string;
  mac: string;
  mtu: number;
  vni?: number;
  port?: number;
  /** Underlay: this node's IP and its interface index (optional). */
  localIp?: string;
  parentIndex?: number;
}

/** Creates or fixes the device; returns it (recreated when VNI/port differ, which cannot change in place). */
export async function ensureVxlanDevice(nl: DataplaneNetlink, spec: VxlanDeviceSpec): Promise<Link> {
  const vni = spec.vni ?? VXLAN_VNI;
  const port = spec.port ?? VXLAN_PORT;
  let link: Link | undefined;
  try {
    link = await nl.linkByName(spec.name);
  } catch (err) {
    if (!(err instanceof LinkNotFoundError)) throw err;
  }
  if (link && (link.kind !== 'vxlan' || link.vxlan?.id !== vni || (link.vxlan.port !== undefined && link.vxlan.port !== port))) {
    await nl.linkDel(link.index);
    link = undefined;
  }
  if (!link) {
    await nl.linkAdd({
      name: spec.name,
      kind: 'vxlan',
      mtu: spec.mtu,
      address: spec.mac,
      vxlan: {
        id: vni,
        port,
        learning: false,
        ...(spec.localIp !== undefined ? { local: spec.localIp } : {}),
        ...(spec.parentIndex !== undefined ? { linkIndex: spec.parentIndex } : {}),
      },
    });
    link = await nl.linkByName(spec.name);
  }
  if (link.mtu !== spec.mtu || link.address?.toLowerCase() !== spec.mac.toLowerCase() || !link.up) {
    await nl.linkSet(link.index, { mtu: spec.mtu, address: spec.mac, up: true });
  }
  await ensureSoleAddress(nl, link.index, `${spec.tunnelIp}/${spec.tunnelIp.includes(':') ? 128 : 32}`);
  return nl.linkByName(spec.name);
}

/** The ARP (IPv6: NDP) and FDB entries for `peers` on device `ifindex`. */
export function vxlanNeighbours(ifindex: number, peers: readonly VxlanPeer[], family: 2 | 10 = AF.INET): { arp: Neigh[]; fdb: Neigh[] } {
  return {
    arp: peers.map((p) => ({ family, ifindex, ip: p.vtepIp, mac: p.mac, state: NUD.PERMANENT })),
    fdb: peers.map((p) => ({ family: AF.BRIDGE, ifindex, mac: p.mac, ip: p.hostIp, state: NUD.PERMANENT, flags: NTF.SELF })),
  };
}

export interface NeighSyncResult {
  set: number;
  deleted: number;
}

/** Makes the device's permanent ARP/FDB entries exactly the desired ones (minimal writes). */
export async function syncVxlanNeighbours(nl: DataplaneNetlink, ifindex: number, peers: readonly VxlanPeer[], family: 2 | 10 = AF.INET): Promise<NeighSyncResult> {
  const { arp, fdb } = vxlanNeighbours(ifindex, peers, family);
  const res: NeighSyncResult = { set: 0, deleted: 0 };
  const lower = (s: string | undefined): string => (s ?? '').toLowerCase();
  const haveArp = (await nl.neighList({ family, ifindex })).filter((n) => ((n.state ?? 0) & NUD.PERMANENT) !== 0);
  const haveFdb = (await nl.neighList({ family: AF.BRIDGE, ifindex })).filter((n) => ((n.state ?? 0) & NUD.PERMANENT) !== 0 && n.ip !== undefined);
  for (const want of arp) {
    if (haveArp.some((h) => h.ip === want.ip && lower(h.mac) === want.mac)) continue;
    await nl.neighSet(want);
    res.set++;
  }
  for (const h of haveArp) {
    if (arp.some((w) => w.ip === h.ip)) continue;
    await nl.neighDel({ family, ifindex, ip: h.ip as string });
    res.deleted++;
  }
  for (const want of fdb) {
    if (haveFdb.some((h) => lower(h.mac) === want.mac && h.ip === want.ip)) continue;
    await nl.neighSet(want);
    res.set++;
  }
  for (const h of haveFdb) {
    if (fdb.some((w) => w.mac === lower(h.mac) && w.ip === h.ip)) continue;
    await nl.neighDel({ family: AF.BRIDGE, ifindex, mac: h.mac as string, ip: h.ip as string, flags: NTF.SELF });
    res.deleted++;
  }
  return res;
}
