/**
 * RTM_NEW/DEL/GETLINK codec (pure). Attribute order follows what iproute2 sends so the golden
 * fixtures compare byte for byte: MTU, ADDRESS, MASTER, NET_NS_*, TXQLEN, IFNAME, LINKINFO.
 */
import { AF, IFF, IFLA, IFLA_INFO, IFLA_IPTUN, IFLA_VXLAN, NLM_F, RTEXT_FILTER, RTM, VETH_INFO_PEER } from './constants.js';
import { NetlinkInputError } from './errors.js';
import { Reader, attrsOf, cstringOf, formatIp, formatMac, parseAttrs, parseIp, parseMac, u32Of, u8Of, type Writer } from './wire.js';

export interface VethPeer {
  name: string;
  mtu?: number;
  address?: string;
  /** Create the peer directly in the namespace of this open fd (IFLA_NET_NS_FD). */
  netnsFd?: number;
  /** … or in the namespace of this process (IFLA_NET_NS_PID). */
  netnsPid?: number;
}

export interface VxlanInfo {
  /** VNI. */
  id: number;
  /** UDP destination port (IANA 4789; Linux's default is 8472 when unset). */
  port?: number;
  local?: string;
  /** Multicast group (or unicast remote). */
  group?: string;
  /** Source-address learning; iproute2 default (and ours when unset) is on. */
  learning?: boolean;
  /** Underlay device index (IFLA_VXLAN_LINK). */
  linkIndex?: number;
  ttl?: number;
}

export interface IpipInfo {
  local?: string;
  remote?: string;
  ttl?: number;
  tos?: number;
  /** Path MTU discovery (default on). */
  pmtudisc?: boolean;
  linkIndex?: number;
}

/** What linkAdd creates. `kind` is the rtnl link kind ('veth', 'bridge', 'vxlan', 'ipip', …). */
export interface LinkSpec {
  name: string;
  kind: string;
  mtu?: number;
  address?: string;
  masterIndex?: number;
  txQueueLen?: number;
  up?: boolean;
  netnsFd?: number;
  netnsPid?: number;
  /** veth only: the other end. */
  peer?: VethPeer;
  vxlan?: VxlanInfo;
  ipip?: IpipInfo;
}

/** What linkSet changes on an existing link (by index). masterIndex 0 = nomaster. */
export interface LinkChange {
  up?: boolean;
  mtu?: number;
  name?: string;
  masterIndex?: number;
  address?: string;
  netnsFd?: number;
  netnsPid?: number;
  /** IFLA_IFALIAS (`ip link set … alias …`); '' clears it. */
  alias?: string;
}

/** A link as the kernel reports it. */
export interface Link {
  index: number;
  name: string;
  /** ARPHRD_* hardware type. */
  hwType: number;
  /** IFF_* flags. */
  flags: number;
  up: boolean;
  mtu?: number;
  address?: string;
  masterIndex?: number;
  /** IFLA_LINK: the veth peer's or the underlay's index (possibly in another netns). */
  parentIndex?: number;
  linkNetnsId?: number;
  operState?: number;
  txQueueLen?: number;
  alias?: string;
  kind?: string;
  vxlan?: VxlanInfo;
  ipip?: IpipInfo;
}

function ifinfomsg(w: Writer, index: number, flags: number, change: number): void {
  w.u8(AF.UNSPEC).u8(0).u16(0).i32(index).u32(flags).u32(change);
}

function v4(s: string, what: string): Buffer {
  const ip = parseIp(s);
  if (ip.family !== AF.INET) throw new NetlinkInputError(`${what} must be IPv4, got ${s}`);
  return ip.bytes;
}

/** The attributes shared by a link and a veth peer, in iproute2's order. */
function commonAttrs(w: Writer, a: { mtu?: number; address?: string; masterIndex?: number; netnsFd?: number; netnsPid?: number; txQueueLen?: number }): void {
  if (a.mtu !== undefined) w.attrU32(IFLA.MTU, a.mtu);
  if (a.address !== undefined) w.attrBytes(IFLA.ADDRESS, parseMac(a.address));
  if (a.masterIndex !== undefined) w.attrU32(IFLA.MASTER, a.masterIndex);
  if (a.netnsFd !== undefined) w.attrU32(IFLA.NET_NS_FD, a.netnsFd);
  if (a.netnsPid !== undefined) w.attrU32(IFLA.NET_NS_PID, a.netnsPid);
  if (a.txQueueLen !== undefined) w.attrU32(IFLA.TXQLEN, a.txQueueLen);
}

function checkName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > 15 || /[\s/:]/.test(name)) throw new NetlinkInputError(`bad interface name ${JSON.stringify(name)} (1-15 bytes, no spaces, '/' or ':')`);
}

function vxlanData(w: Writer, v: VxlanInfo): void {
  if (v.linkIndex !== undefined) w.attrU32(IFLA_VXLAN.LINK, v.linkIndex);
  w.attrU32(IFLA_VXLAN.ID, v.id);
  if (v.group !== undefined) {
    const g = parseIp(v.group);
    w.attrBytes(g.family === AF.INET ? IFLA_VXLAN.GROUP : IFLA_VXLAN.GROUP6, g.bytes);
  }
  if (v.local !== undefined) {
    const l = parseIp(v.local);
    w.attrBytes(l.family === AF.INET ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, l.bytes);
  }
  if (v.ttl !== undefined) w.attrU8(IFLA_VXLAN.TTL, v.ttl);
  w.attrU8(IFLA_VXLAN.LEARNING, v.learning === false ? 0 : 1);
  if (v.port !== undefined) w.attrU16be(IFLA_VXLAN.PORT, v.port);
}

/** iproute2 sends every IPIP parameter, defaults included; so do we. */
function ipipData(w: Writer, t: IpipInfo): void {
  w.attrU8(IFLA_IPTUN.PROTO, 0);
  w.attrBytes(IFLA_IPTUN.LOCAL, t.local ? v4(t.local, 'ipip local') : Buffer.alloc(4));
  w.attrBytes(IFLA_IPTUN.REMOTE, t.remote ? v4(t.remote, 'ipip remote') : Buffer.alloc(4));
  w.attrU8(IFLA_IPTUN.PMTUDISC, t.pmtudisc === false ? 0 : 1);
  w.attrU8(IFLA_IPTUN.TOS, t.tos ?? 0);
  w.attrU8(IFLA_IPTUN.TTL, t.ttl ?? 0);
  w.attrU32(IFLA_IPTUN.LINK, t.linkIndex ?? 0);
  w.attrU32(IFLA_IPTUN.FWMARK, 0);
  w.attrU16(IFLA_IPTUN.ENCAP_TYPE, 0);
  w.attrU16(IFLA_IPTUN.ENCAP_FLAGS, 0);
  w.attrU16be(IFLA_IPTUN.ENCAP_SPORT, 0);
  w.attrU16be(IFLA_IPTUN.ENCAP_DPORT, 0);
}

/** RTM_NEWLINK creating a link: `ip link add`. */
export function encodeLinkAdd(w: Writer, seq: number, spec: LinkSpec, flags = NLM_F.CREATE | NLM_F.EXCL): void {
  checkName(spec.name);
  if (spec.ipip && spec.ipip.pmtudisc === false && spec.ipip.ttl) throw new NetlinkInputError('ipip: ttl and pmtudisc off are incompatible');
  const m = w.beginMessage(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK | flags, seq);
  const up = spec.up ? IFF.UP : 0;
  ifinfomsg(w, 0, up, up);
  commonAttrs(w, spec);
  w.attrCString(IFLA.IFNAME, spec.name);
  const info = w.beginAttr(IFLA.LINKINFO);
  w.attrString(IFLA_INFO.KIND, spec.kind);
  if (spec.kind === 'veth' && spec.peer) {
    checkName(spec.peer.name);
    const data = w.beginAttr(IFLA_INFO.DATA);
    const peer = w.beginAttr(VETH_INFO_PEER);
    ifinfomsg(w, 0, 0, 0);
    commonAttrs(w, spec.peer);
    w.attrCString(IFLA.IFNAME, spec.peer.name);
    w.endAttr(peer);
    w.endAttr(data);
  } else if (spec.kind === 'vxlan') {
    if (!spec.vxlan) throw new NetlinkInputError('vxlan link needs vxlan: { id }');
    const data = w.beginAttr(IFLA_INFO.DATA);
    vxlanData(w, spec.vxlan);
    w.endAttr(data);
  } else if (spec.kind === 'ipip') {
    const data = w.beginAttr(IFLA_INFO.DATA);
    ipipData(w, spec.ipip ?? {});
    w.endAttr(data);
  }
  w.endAttr(info);
  w.endMessage(m);
}

/** RTM_NEWLINK changing an existing link: `ip link set dev … up|down|mtu|name|master|address|netns`. */
export function encodeLinkSet(w: Writer, seq: number, index: number, c: LinkChange): void {
  if (c.name !== undefined) checkName(c.name);
  const m = w.beginMessage(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK, seq);
  ifinfomsg(w, index, c.up ? IFF.UP : 0, c.up === undefined ? 0 : IFF.UP);
  commonAttrs(w, c);
  if (c.name !== undefined) w.attrCString(IFLA.IFNAME, c.name);
  if (c.alias !== undefined) w.attrString(IFLA.IFALIAS, c.alias);
  w.endMessage(m);
}

/** RTM_DELLINK: `ip link del dev …`. */
export function encodeLinkDel(w: Writer, seq: number, index: number): void {
  const m = w.beginMessage(RTM.DELLINK, NLM_F.REQUEST | NLM_F.ACK, seq);
  ifinfomsg(w, index, 0, 0);
  w.endMessage(m);
}

const EXT_MASK = RTEXT_FILTER.VF | RTEXT_FILTER.SKIP_STATS;

/** RTM_GETLINK for one link, by index or by name: `ip link show dev …`. */
export function encodeLinkGet(w: Writer, seq: number, link: number | string): void {
  const m = w.beginMessage(RTM.GETLINK, NLM_F.REQUEST, seq);
  ifinfomsg(w, typeof link === 'number' ? link : 0, 0, 0);
  if (typeof link === 'string') {
    checkName(link);
    w.attrCString(IFLA.IFNAME, link);
  }
  w.attrU32(IFLA.EXT_MASK, EXT_MASK);
  w.endMessage(m);
}

/** RTM_GETLINK dump of every link. */
export function encodeLinkDump(w: Writer, seq: number): void {
  const m = w.beginMessage(RTM.GETLINK, NLM_F.REQUEST | NLM_F.DUMP, seq);
  ifinfomsg(w, 0, 0, 0);
  w.attrU32(IFLA.EXT_MASK, EXT_MASK);
  w.endMessage(m);
}

function decodeVxlan(data: Buffer): VxlanInfo {
  const v: VxlanInfo = { id: 0 };
  for (const a of attrsOf(data)) {
    switch (a.type) {
      case IFLA_VXLAN.ID:
        v.id = u32Of(a);
        break;
      case IFLA_VXLAN.PORT:
        v.port = a.data.readUInt16BE(0);
        break;
      case IFLA_VXLAN.LOCAL:
      case IFLA_VXLAN.LOCAL6:
        v.local = formatIp(a.data);
        break;
      case IFLA_VXLAN.GROUP:
      case IFLA_VXLAN.GROUP6:
        v.group = formatIp(a.data);
        break;
      case IFLA_VXLAN.LEARNING:
        v.learning = u8Of(a) !== 0;
        break;
      case IFLA_VXLAN.LINK:
        v.linkIndex = u32Of(a);
        break;
      case IFLA_VXLAN.TTL:
        v.ttl = u8Of(a);
        break;
    }
  }
  return v;
}

function decodeIpip(data: Buffer): IpipInfo {
  const t: IpipInfo = {};
  for (const a of attrsOf(data)) {
    if (a.type === IFLA_IPTUN.LOCAL) t.local = formatIp(a.data);
    else if (a.type === IFLA_IPTUN.REMOTE) t.remote = formatIp(a.data);
    else if (a.type === IFLA_IPTUN.TTL) t.ttl = u8Of(a);
    else if (a.type === IFLA_IPTUN.TOS) t.tos = u8Of(a);
    else if (a.type === IFLA_IPTUN.PMTUDISC) t.pmtudisc = u8Of(a) !== 0;
    else if (a.type === IFLA_IPTUN.LINK) t.linkIndex = u32Of(a);
  }
  return t;
}

/** Decodes the payload of an RTM_NEWLINK/DELLINK message. */
export function decodeLink(payload: Buffer): Link {
  const r = new Reader(payload);
  r.u8(); // family
  r.u8();
  const hwType = r.u16();
  const index = r.i32();
  const flags = r.u32();
  r.u32(); // change
  const link: Link = { index, name: '', hwType, flags, up: (flags & IFF.UP) !== 0 };
  for (const a of parseAttrs(r)) {
    switch (a.type) {
      case IFLA.IFNAME:
        link.name = cstringOf(a);
        break;
      case IFLA.MTU:
        link.mtu = u32Of(a);
        break;
      case IFLA.ADDRESS:
        link.address = formatMac(a.data);
        break;
      case IFLA.MASTER:
        link.masterIndex = u32Of(a);
        break;
      case IFLA.LINK:
        link.parentIndex = u32Of(a);
        break;
      case IFLA.LINK_NETNSID:
        link.linkNetnsId = a.data.readInt32LE(0);
        break;
      case IFLA.OPERSTATE:
        link.operState = u8Of(a);
        break;
      case IFLA.TXQLEN:
        link.txQueueLen = u32Of(a);
        break;
      case IFLA.IFALIAS:
        link.alias = cstringOf(a);
        break;
      case IFLA.LINKINFO: {
        let data: Buffer | undefined;
        for (const i of attrsOf(a.data)) {
          if (i.type === IFLA_INFO.KIND) link.kind = cstringOf(i);
          else if (i.type === IFLA_INFO.DATA) data = i.data;
        }
        if (data && link.kind === 'vxlan') link.vxlan = decodeVxlan(data);
        else if (data && link.kind === 'ipip') link.ipip = decodeIpip(data);
        break;
      }
    }
  }
  return link;
}
