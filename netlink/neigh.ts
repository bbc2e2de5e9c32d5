/**
 * RTM_NEW/DEL/GETNEIGH codec (pure): ARP/NDP entries and bridge FDB entries (family AF_BRIDGE,
 * NTF_SELF) as felix programs them for VXLAN. iproute2 order: NDA_DST then NDA_LLADDR for ARP/NDP,
 * `bridge fdb` sends NDA_LLADDR first.
 */
import { AF, NDA, NLM_F, NUD, RTM } from './constants.js';
import { NetlinkInputError } from './errors.js';
import { Reader, formatIp, formatMac, parseAttrs, parseIp, parseMac, u16Of, u32Of, type Writer } from './wire.js';

export interface Neigh {
  /** AF_INET/AF_INET6 for ARP/NDP, AF_BRIDGE (7) for FDB; inferred from `ip` when unset. */
  family?: 2 | 10 | 7;
  ifindex: number;
  /** NDA_DST: the neighbour's IP (ARP/NDP) or the remote VTEP (FDB). */
  ip?: string;
  /** NDA_LLADDR. */
  mac?: string;
  /** NUD_* (default permanent; for FDB permanent|noarp like `bridge fdb`). */
  state?: number;
  /** NTF_* (NTF_SELF 0x2 for VXLAN FDB entries). */
  flags?: number;
  type?: number;
  vlan?: number;
  master?: number;
}

export interface NeighFilter {
  family?: 0 | 2 | 10 | 7;
  ifindex?: number;
}

function neighFamily(n: Neigh): 2 | 10 | 7 {
  if (n.family) return n.family;
  if (n.ip) return parseIp(n.ip).family;
  throw new NetlinkInputError('neighbour needs an ip or an explicit family (7 = bridge FDB)');
}

export function encodeNeigh(w: Writer, seq: number, type: number, nlFlags: number, n: Neigh): void {
  const family = neighFamily(n);
  const state = n.state ?? (family === AF.BRIDGE ? NUD.PERMANENT | NUD.NOARP : NUD.PERMANENT);
  const m = w.beginMessage(type, NLM_F.REQUEST | nlFlags, seq);
  w.u8(family).u8(0).u16(0).i32(n.ifindex).u16(state).u8(n.flags ?? 0).u8(n.type ?? 0);
  const dst = () => n.ip !== undefined && w.attrBytes(NDA.DST, parseIp(n.ip).bytes);
  const ll = () => n.mac !== undefined && w.attrBytes(NDA.LLADDR, parseMac(n.mac));
  if (family === AF.BRIDGE) {
    ll();
    dst();
  } else {
    dst();
    ll();
  }
  if (n.vlan !== undefined) w.attrU16(NDA.VLAN, n.vlan);
  w.endMessage(m);
}

export function encodeNeighDump(w: Writer, seq: number, family: number = AF.UNSPEC): void {
  const m = w.beginMessage(RTM.GETNEIGH, NLM_F.REQUEST | NLM_F.DUMP, seq);
  w.u8(family).u8(0).u16(0).i32(0).u16(0).u8(0).u8(0);
  w.endMessage(m);
}

export function decodeNeigh(payload: Buffer): Neigh {
  const r = new Reader(payload);
  const family = r.u8() as 2 | 10 | 7;
  r.u8();
  r.u16();
  const ifindex = r.i32();
  const state = r.u16();
  const flags = r.u8();
  const type = r.u8();
  const n: Neigh = { family, ifindex, state, flags, type };
  for (const a of parseAttrs(r)) {
    if (a.type === NDA.DST) n.ip = formatIp(a.data);
    else if (a.type === NDA.LLADDR && a.data.length === 6) n.mac = formatMac(a.data);
    else if (a.type === NDA.VLAN) n.vlan = u16Of(a);
    else if (a.type === NDA.MASTER) n.master = u32Of(a);
  }
  return n;
}
