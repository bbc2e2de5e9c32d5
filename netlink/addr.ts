/**
 * RTM_NEW/DEL/GETADDR codec (pure). Like iproute2 we send IFA_LOCAL then IFA_ADDRESS (the peer, or
 * the local address again), for IPv4 and IPv6 alike.
 */
import { AF, IFA, NLM_F, RTM } from './constants.js';
import { Reader, cstringOf, formatIp, parseAttrs, parseCidr, parseIp, u32Of, type Writer } from './wire.js';

export interface Addr {
  /** Interface index. */
  ifindex: number;
  /** Local address with prefix length, "10.1.0.1/24". */
  address: string;
  /** Point-to-point peer (IFA_ADDRESS when it differs from the local address). */
  peer?: string;
  broadcast?: string;
  /** RT_SCOPE_* (universe 0, link 253, host 254). */
  scope?: number;
  /** IFA_F_* (nodad 0x2, permanent 0x80, …). */
  flags?: number;
  label?: string;
  /** Set on decoded addresses. */
  family?: 2 | 10;
}

export interface AddrFilter {
  family?: 0 | 2 | 10;
  ifindex?: number;
}

export function encodeAddr(w: Writer, seq: number, type: number, nlFlags: number, a: Addr): void {
  const c = parseCidr(a.address);
  const flags = a.flags ?? 0;
  const m = w.beginMessage(type, NLM_F.REQUEST | nlFlags, seq);
  w.u8(c.family).u8(c.prefixLen).u8(flags & 0xff).u8(a.scope ?? 0).u32(a.ifindex);
  w.attrBytes(IFA.LOCAL, c.bytes);
  w.attrBytes(IFA.ADDRESS, a.peer ? parseIp(a.peer).bytes : c.bytes);
  if (a.broadcast !== undefined) w.attrBytes(IFA.BROADCAST, parseIp(a.broadcast).bytes);
  if (a.label !== undefined) w.attrCString(IFA.LABEL, a.label);
  if (flags > 0xff) w.attrU32(IFA.FLAGS, flags);
  w.endMessage(m);
}

export function encodeAddrDump(w: Writer, seq: number, family: number = AF.UNSPEC): void {
  const m = w.beginMessage(RTM.GETADDR, NLM_F.REQUEST | NLM_F.DUMP, seq);
  w.u8(family).u8(0).u8(0).u8(0).u32(0);
  w.endMessage(m);
}

export function decodeAddr(payload: Buffer): Addr {
  const r = new Reader(payload);
  const family = r.u8() as 2 | 10;
  const prefixLen = r.u8();
  let flags = r.u8();
  const scope = r.u8();
  const ifindex = r.u32();
  let local: string | undefined;
  let address: string | undefined;
  const out: Addr = { ifindex, address: '', scope, family };
  for (const a of parseAttrs(r)) {
    if (a.type === IFA.LOCAL) local = formatIp(a.data);
    else if (a.type === IFA.ADDRESS) address = formatIp(a.data);
    else if (a.type === IFA.BROADCAST) out.broadcast = formatIp(a.data);
    else if (a.type === IFA.LABEL) out.label = cstringOf(a);
    else if (a.type === IFA.FLAGS) flags = u32Of(a);
  }
  out.flags = flags;
  out.address = `${local ?? address ?? ''}/${prefixLen}`;
  if (local && address && local !== address) out.peer = address;
  return out;
}
