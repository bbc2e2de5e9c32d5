/**
 * RTM_NEW/DEL/GETROUTE codec (pure). One `Route` shape is used to add, to delete, and as the decoded
 * result (vishvananda/netlink style). Defaults follow iproute2: add → table main, proto boot, type
 * unicast, scope link when there is no gateway (universe otherwise); delete → proto/type wildcard
 * (0) and scope "nowhere" (wildcard) unless given.
 * Attribute order follows iproute2: DST, PRIORITY, PREFSRC, GATEWAY|VIA, OIF, MULTIPATH, METRICS, TABLE.
 */
import { AF, NLM_F, RTA, RTAX, RTM, RTNH_F, RTN, RTPROT, RT_SCOPE, RT_TABLE } from './constants.js';
import { NetlinkInputError } from './errors.js';
import { Reader, attrsOf, formatIp, parseAttrs, parseCidr, parseIp, u32Of, type Attr, type Writer } from './wire.js';

export interface NextHop {
  /** Gateway; an address of the other family is sent as RTA_VIA. */
  gw?: string;
  oif?: number;
  /** 1..256, like `ip route … nexthop … weight N`. */
  weight?: number;
  onlink?: boolean;
  /** RTNH_F_* as reported by the kernel. */
  flags?: number;
}

export interface Route {
  /** AF_INET (2) or AF_INET6 (10); inferred from dst/gw when unset. */
  family?: 2 | 10;
  /** Destination prefix, "10.0.0.0/24"; unset = default route. Decoded routes always carry it. */
  dst?: string;
  /** Source-specific routing prefix (RTA_SRC). */
  src?: string;
  /** Gateway; an address of the other family (IPv4 via IPv6) is sent as RTA_VIA. */
  gw?: string;
  /** Output interface index. */
  oif?: number;
  table?: number;
  protocol?: number;
  scope?: number;
  /** RTN_* (unicast 1, blackhole 6, unreachable 7, prohibit 8, …). */
  type?: number;
  /** Metric. */
  priority?: number;
  prefsrc?: string;
  tos?: number;
  /** RTNH_F_ONLINK: the gateway is on the link even without a matching subnet route. */
  onlink?: boolean;
  /** rtm_flags as reported (RTNH_F_*, RTM_F_*). */
  flags?: number;
  /** RTAX_MTU, shorthand for metrics[RTAX.MTU]. */
  mtu?: number;
  /** Other RTAX_* metrics. */
  metrics?: Record<number, number>;
  multipath?: NextHop[];
}

/** Which fields of a dump to keep; undefined fields match anything. table undefined = main, 0 = all. */
export interface RouteFilter {
  family?: 0 | 2 | 10;
  table?: number;
  protocol?: number;
  oif?: number;
  type?: number;
  scope?: number;
  dst?: string;
}

type Op = 'add' | 'del';

function routeFamily(r: Route): 2 | 10 {
  if (r.family) return r.family;
  if (r.dst) return parseCidr(r.dst).family;
  if (r.gw) return parseIp(r.gw).family;
  const nh = r.multipath?.find((n) => n.gw);
  if (nh?.gw) return parseIp(nh.gw).family;
  throw new NetlinkInputError('route has no dst, gw or family: cannot tell IPv4 from IPv6');
}

/** RTA_GATEWAY for the route's own family, RTA_VIA (family u16 + address) for the other one. */
function gatewayAttr(w: Writer, family: number, gw: string): void {
  const ip = parseIp(gw);
  if (ip.family === family) {
    w.attrBytes(RTA.GATEWAY, ip.bytes);
    return;
  }
  const s = w.beginAttr(RTA.VIA);
  w.u16(ip.family).bytes(ip.bytes);
  w.endAttr(s);
}

/** Encodes one route message. `nlFlags` are the NLM_F_* bits beyond REQUEST (ACK, CREATE, …). */
export function encodeRoute(w: Writer, seq: number, type: number, nlFlags: number, r: Route): void {
  const op: Op = type === RTM.DELROUTE ? 'del' : 'add';
  const family = routeFamily(r);
  const dst = r.dst ? parseCidr(r.dst) : undefined;
  if (dst && dst.family !== family) throw new NetlinkInputError(`route dst ${r.dst} is not ${family === AF.INET ? 'IPv4' : 'IPv6'}`);
  const src = r.src ? parseCidr(r.src) : undefined;
  const table = r.table ?? RT_TABLE.MAIN;
  const rtype = r.type ?? (op === 'add' ? RTN.UNICAST : RTN.UNSPEC);
  let scope = r.scope;
  if (scope === undefined) {
    if (rtype === RTN.LOCAL || rtype === RTN.NAT) scope = RT_SCOPE.HOST;
    else if (rtype === RTN.BROADCAST || rtype === RTN.MULTICAST || rtype === RTN.ANYCAST) scope = RT_SCOPE.LINK;
    else if (op === 'del') scope = RT_SCOPE.NOWHERE;
    else if ((rtype === RTN.UNICAST || rtype === RTN.UNSPEC) && !r.gw && !r.multipath?.length) scope = RT_SCOPE.LINK;
    else scope = RT_SCOPE.UNIVERSE;
  }
  const m = w.beginMessage(type, NLM_F.REQUEST | nlFlags, seq);
  w.u8(family)
    .u8(dst?.prefixLen ?? 0)
    .u8(src?.prefixLen ?? 0)
    .u8(r.tos ?? 0)
    .u8(table < 256 ? table : RT_TABLE.UNSPEC)
    .u8(r.protocol ?? (op === 'add' ? RTPROT.BOOT : RTPROT.UNSPEC))
    .u8(scope)
    .u8(rtype)
    .u32((r.flags ?? 0) | (r.onlink ? RTNH_F.ONLINK : 0));
  if (dst && dst.prefixLen > 0) w.attrBytes(RTA.DST, dst.bytes);
  if (src && src.prefixLen > 0) w.attrBytes(RTA.SRC, src.bytes);
  if (r.priority !== undefined) w.attrU32(RTA.PRIORITY, r.priority);
  if (r.prefsrc !== undefined) w.attrBytes(RTA.PREFSRC, parseIp(r.prefsrc).bytes);
  if (r.gw !== undefined) gatewayAttr(w, family, r.gw);
  if (r.oif !== undefined) w.attrU32(RTA.OIF, r.oif);
  if (r.multipath?.length) {
    const mp = w.beginAttr(RTA.MULTIPATH);
    for (const nh of r.multipath) {
      const weight = nh.weight ?? 1;
      if (weight < 1 || weight > 256) throw new NetlinkInputError(`nexthop weight ${weight} out of 1..256`);
      const start = w.off;
      w.u16(0)
        .u8((nh.flags ?? 0) | (nh.onlink ? RTNH_F.ONLINK : 0))
        .u8(weight - 1)
        .i32(nh.oif ?? 0);
      if (nh.gw !== undefined) gatewayAttr(w, family, nh.gw);
      w.buf.writeUInt16LE(w.off - start, start);
    }
    w.endAttr(mp);
  }
  const metrics = { ...(r.metrics ?? {}) };
  if (r.mtu !== undefined) metrics[RTAX.MTU] = r.mtu;
  const keys = Object.keys(metrics)
    .map(Number)
    .sort((a, b) => a - b);
  if (keys.length) {
    const s = w.beginAttr(RTA.METRICS);
    for (const k of keys) w.attrU32(k, metrics[k] as number);
    w.endAttr(s);
  }
  if (table >= 256) w.attrU32(RTA.TABLE, table);
  w.endMessage(m);
}

/**
 * RTM_GETROUTE dump. With NETLINK_GET_STRICT_CHK the kernel filters by table, protocol, type and
 * OIF itself; the caller filters again (older kernels ignore the header fields).
 */
export function encodeRouteDump(w: Writer, seq: number, f: RouteFilter = {}): void {
  const table = f.table ?? RT_TABLE.MAIN;
  const m = w.beginMessage(RTM.GETROUTE, NLM_F.REQUEST | NLM_F.DUMP, seq);
  w.u8(f.family ?? AF.UNSPEC)
    .u8(0)
    .u8(0)
    .u8(0)
    .u8(table < 256 ? table : RT_TABLE.UNSPEC)
    .u8(f.protocol ?? 0)
    .u8(0)
    .u8(f.type ?? 0)
    .u32(0);
  if (f.oif !== undefined) w.attrU32(RTA.OIF, f.oif);
  if (table >= 256) w.attrU32(RTA.TABLE, table);
  w.endMessage(m);
}

function gatewayOf(a: Attr): string {
  if (a.type === RTA.VIA) return formatIp(a.data.subarray(2));
  return formatIp(a.data);
}

function decodeNextHops(data: Buffer): NextHop[] {
  const out: NextHop[] = [];
  const r = new Reader(data);
  while (r.left >= 8) {
    const start = r.off;
    const len = r.u16();
    if (len < 8 || start + len > r.end) break;
    const flags = r.u8();
    const hops = r.u8();
    const oif = r.i32();
    const nh: NextHop = { weight: hops + 1, flags, onlink: (flags & RTNH_F.ONLINK) !== 0 };
    if (oif) nh.oif = oif;
    for (const a of parseAttrs(r.sub(len - 8))) if (a.type === RTA.GATEWAY || a.type === RTA.VIA) nh.gw = gatewayOf(a);
    out.push(nh);
    r.off = Math.min(start + ((len + 3) & ~3), r.end);
  }
  return out;
}

/** Decodes the payload of an RTM_NEWROUTE/DELROUTE message. */
export function decodeRoute(payload: Buffer): Route {
  const r = new Reader(payload);
  const family = r.u8() as 2 | 10;
  const dstLen = r.u8();
  const srcLen = r.u8();
  const tos = r.u8();
  let table = r.u8();
  const protocol = r.u8();
  const scope = r.u8();
  const type = r.u8();
  const flags = r.u32();
  const route: Route = { family, table, protocol, scope, type, flags, tos, onlink: (flags & RTNH_F.ONLINK) !== 0 };
  let dst: string | undefined;
  for (const a of parseAttrs(r)) {
    switch (a.type) {
      case RTA.DST:
        dst = formatIp(a.data);
        break;
      case RTA.SRC:
        route.src = `${formatIp(a.data)}/${srcLen}`;
        break;
      case RTA.GATEWAY:
      case RTA.VIA:
        route.gw = gatewayOf(a);
        break;
      case RTA.OIF:
        route.oif = u32Of(a);
        break;
      case RTA.PRIORITY:
        route.priority = u32Of(a);
        break;
      case RTA.PREFSRC:
        route.prefsrc = formatIp(a.data);
        break;
      case RTA.TABLE:
        table = u32Of(a);
        break;
      case RTA.METRICS: {
        const metrics: Record<number, number> = {};
        for (const x of attrsOf(a.data)) if (x.data.length >= 4) metrics[x.type] = u32Of(x);
        route.metrics = metrics;
        if (metrics[RTAX.MTU] !== undefined) route.mtu = metrics[RTAX.MTU];
        break;
      }
      case RTA.MULTIPATH:
        route.multipath = decodeNextHops(a.data);
        break;
    }
  }
  route.table = table;
  route.dst = `${dst ?? (family === AF.INET6 ? '::' : '0.0.0.0')}/${dstLen}`;
  return route;
}

/** True when a decoded route passes a filter (the JS side of routeList filtering). */
export function routeMatches(r: Route, f: RouteFilter): boolean {
  const table = f.table ?? RT_TABLE.MAIN;
  if (table !== RT_TABLE.UNSPEC && r.table !== table) return false;
  if (f.family && r.family !== f.family) return false;
  if (f.protocol !== undefined && r.protocol !== f.protocol) return false;
  if (f.type !== undefined && r.type !== f.type) return false;
  if (f.scope !== undefined && r.scope !== f.scope) return false;
  if (f.oif !== undefined && r.oif !== f.oif && !r.multipath?.some((n) => n.oif === f.oif)) return false;
  if (f.dst !== undefined && r.dst !== normaliseCidr(f.dst)) return false;
  return true;
}

/** "10.0.0.1" → "10.0.0.1/32", "fd00:0::1/64" → "fd00::1/64", for comparing with decoded routes. */
export function normaliseCidr(s: string): string {
  const c = parseCidr(s);
  return `${formatIp(c.bytes)}/${c.prefixLen}`;
}
