/**
 * Capability negotiation: our OPEN from the local config, and the checks and result when the
 * peer's OPEN arrives (RFC 4271 §6.2, RFC 5492, RFC 6793, RFC 7911, RFC 4724, RFC 6286).
 */
import { AFI, SAFI, familyOf, type Family } from '../types.js';
import {
  AS_TRANS,
  AddPathMode,
  BgpError,
  NotifCode,
  OpenSub,
  type Capability,
  type DecodeOptions,
  type EncodeOptions,
  type OpenMessage,
} from '../codec/index.js';

export type AddPathSetting = 'none' | 'receive' | 'send' | 'both';

export interface LocalConfig {
  localAs: number;
  routerId: string;
  /** Expected peer AS; a list accepts any of them (dynamic peers). */
  peerAs: number | readonly number[];
  /** Proposed hold time in seconds: 0 or ≥ 3. Default 90. */
  holdTime?: number;
  /**
   * Keepalive interval in seconds. Used when below the negotiated hold time; otherwise (and by
   * default) one third of the negotiated hold time.
   */
  keepaliveTime?: number;
  families?: readonly Family[];
  addPath?: Partial<Record<Family, AddPathSetting>>;
  gracefulRestart?: { restartTime: number; restarting?: boolean; notification?: boolean; forwarding?: readonly Family[] };
  routeRefresh?: boolean;
  enhancedRouteRefresh?: boolean;
  extendedMessage?: boolean;
  /** Offer IPv4 NLRI with IPv6 next hops (RFC 8950). */
  extendedNextHop?: boolean;
  hostname?: { hostname: string; domain: string };
}

export interface NegotiatedGr {
  restartTime: number;
  restarting: boolean;
  notification: boolean;
  families: Array<{ family: Family; forwarding: boolean }>;
}

/** What both sides agreed on; also what the codec needs per direction. */
export interface Negotiated {
  peerAs: number;
  peerId: string;
  holdTime: number;
  keepaliveTime: number;
  as4: boolean;
  families: Family[];
  addPath: { receive: Family[]; send: Family[] };
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  extendedMessage: boolean;
  /** Families whose NLRI may carry an IPv6 next hop (RFC 8950), i.e. ipv4-unicast when agreed. */
  extendedNextHop: Family[];
  /** The peer's graceful-restart capability, when it sent one. */
  gracefulRestart: NegotiatedGr | undefined;
  /** The peer sent the LLGR capability (parsed and ignored). */
  llgr: boolean;
  peerHostname: string | undefined;
  peerCapabilities: Capability[];
  decode: DecodeOptions;
  encode: EncodeOptions;
}

function afiSafi(f: Family): { afi: number; safi: number } {
  return { afi: f === 'ipv4-unicast' ? AFI.IPV4 : AFI.IPV6, safi: SAFI.UNICAST };
}

export const DEFAULT_HOLD_TIME = 90;

export function buildOpen(cfg: LocalConfig): Omit<OpenMessage, 'type'> {
  const families = cfg.families ?? ['ipv4-unicast'];
  const caps: Capability[] = [];
  for (const f of families) caps.push({ kind: 'multiprotocol', ...afiSafi(f) });
  if (cfg.routeRefresh !== false) caps.push({ kind: 'route-refresh' });
  if (cfg.enhancedRouteRefresh !== false) caps.push({ kind: 'enhanced-route-refresh' });
  if (cfg.extendedNextHop && families.includes('ipv4-unicast')) {
    caps.push({ kind: 'extended-next-hop', tuples: [{ afi: AFI.IPV4, safi: SAFI.UNICAST, nextHopAfi: AFI.IPV6 }] });
  }
  if (cfg.extendedMessage) caps.push({ kind: 'extended-message' });
  if (cfg.gracefulRestart) {
    const gr = cfg.gracefulRestart;
    caps.push({
      kind: 'graceful-restart',
      restarting: gr.restarting ?? false,
      notification: gr.notification ?? false,
      restartTime: gr.restartTime,
      families: families.map((f) => ({ ...afiSafi(f), forwarding: gr.forwarding?.includes(f) ?? false })),
    });
  }
  caps.push({ kind: 'as4', asn: cfg.localAs });
  const ap = families
    .map((f) => ({ f, s: cfg.addPath?.[f] ?? 'none' }))
    .filter((x) => x.s !== 'none')
    .map((x) => ({ ...afiSafi(x.f), mode: x.s === 'both' ? AddPathMode.BOTH : x.s === 'send' ? AddPathMode.SEND : AddPathMode.RECEIVE }));
  if (ap.length) caps.push({ kind: 'add-path', families: ap });
  if (cfg.hostname) caps.push({ kind: 'fqdn', ...cfg.hostname });
  return {
    version: 4,
    // RFC 6793: AS_TRANS only when the local AS does not fit in 2 bytes.
    myAs: cfg.localAs > 0xffff ? AS_TRANS : cfg.localAs,
    holdTime: cfg.holdTime ?? DEFAULT_HOLD_TIME,
    bgpId: cfg.routerId,
    capabilities: caps,
  };
}

function openError(subcode: number, msg: string, data?: Uint8Array): BgpError {
  return new BgpError(NotifCode.OPEN, subcode, msg, data ? { data, hint: 'check the peer configuration' } : { hint: 'check the peer configuration' });
}

function ipToU32(a: string): number {
  return a.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

/** Validate the peer's OPEN and compute the negotiated session parameters. Throws BgpError (OPEN error). */
export function negotiate(cfg: LocalConfig, open: OpenMessage): Negotiated {
  if (open.version !== 4) throw openError(OpenSub.UNSUPPORTED_VERSION, `unsupported BGP version ${open.version}`, new Uint8Array([0, 4]));
  const caps = open.capabilities;
  const as4cap = caps.find((c): c is Extract<Capability, { kind: 'as4' }> => c.kind === 'as4');
  const peerAs = as4cap ? as4cap.asn : open.myAs;
  const expected = typeof cfg.peerAs === 'number' ? [cfg.peerAs] : cfg.peerAs;
  if (!expected.includes(peerAs) || (as4cap && open.myAs !== AS_TRANS && open.myAs !== as4cap.asn)) {
    const d = new Uint8Array(2);
    d[0] = open.myAs >> 8;
    d[1] = open.myAs & 0xff;
    throw openError(OpenSub.BAD_PEER_AS, `bad peer AS ${peerAs} (expected ${expected.join(' or ')})`, d);
  }
  const peerId = ipToU32(open.bgpId);
  if (peerId === 0 || (peerId === ipToU32(cfg.routerId) && peerAs === cfg.localAs)) {
    throw openError(OpenSub.BAD_BGP_ID, `bad BGP identifier ${open.bgpId}`);
  }
  if (open.holdTime === 1 || open.holdTime === 2) throw openError(OpenSub.UNACCEPTABLE_HOLD_TIME, `unacceptable hold time ${open.holdTime}`);
  const localHold = cfg.holdTime ?? DEFAULT_HOLD_TIME;
  const holdTime = Math.min(localHold, open.holdTime);
  const keepaliveTime = holdTime === 0 ? 0 : cfg.keepaliveTime !== undefined && cfg.keepaliveTime >= 1 && cfg.keepaliveTime < holdTime ? cfg.keepaliveTime : Math.max(1, Math.floor(holdTime / 3));

  const ours = cfg.families ?? ['ipv4-unicast'];
  const mp = caps.filter((c): c is Extract<Capability, { kind: 'multiprotocol' }> => c.kind === 'multiprotocol');
  // RFC 4760 §8: no MP capability at all means IPv4 unicast only.
  const theirs = mp.length ? mp.map((c) => familyOf(c.afi, c.safi)).filter((f): f is Family => f !== undefined) : ['ipv4-unicast' as Family];
  const families = ours.filter((f) => theirs.includes(f));

  const apCap = caps.find((c): c is Extract<Capability, { kind: 'add-path' }> => c.kind === 'add-path');
  const receive: Family[] = [];
  const send: Family[] = [];
  for (const f of families) {
    const mine = cfg.addPath?.[f] ?? 'none';
    const { afi, safi } = afiSafi(f);
    const peerMode = apCap?.families.find((x) => x.afi === afi && x.safi === safi)?.mode ?? 0;
    if ((mine === 'receive' || mine === 'both') && peerMode & AddPathMode.SEND) receive.push(f);
    if ((mine === 'send' || mine === 'both') && peerMode & AddPathMode.RECEIVE) send.push(f);
  }
  const has = (k: Capability['kind']): boolean => caps.some((c) => c.kind === k);
  const grCap = caps.find((c): c is Extract<Capability, { kind: 'graceful-restart' }> => c.kind === 'graceful-restart');
  const gracefulRestart: NegotiatedGr | undefined = grCap
    ? {
        restartTime: grCap.restartTime,
        restarting: grCap.restarting,
        notification: grCap.notification,
        families: grCap.families.flatMap((x) => {
          const f = familyOf(x.afi, x.safi);
          return f ? [{ family: f, forwarding: x.forwarding }] : [];
        }),
      }
    : undefined;
  const enhCap = caps.find((c): c is Extract<Capability, { kind: 'extended-next-hop' }> => c.kind === 'extended-next-hop');
  const extendedNextHop: Family[] =
    cfg.extendedNextHop && enhCap?.tuples.some((t) => t.afi === AFI.IPV4 && t.safi === SAFI.UNICAST && t.nextHopAfi === AFI.IPV6) && families.includes('ipv4-unicast')
      ? ['ipv4-unicast']
      : [];
  const as4 = as4cap !== undefined;
  const extendedMessage = cfg.extendedMessage === true && has('extended-message');
  const fqdn = caps.find((c): c is Extract<Capability, { kind: 'fqdn' }> => c.kind === 'fqdn');
  return {
    peerAs,
    peerId: open.bgpId,
    holdTime,
    keepaliveTime,
    as4,
    families,
    addPath: { receive, send },
    routeRefresh: cfg.routeRefresh !== false && (has('route-refresh') || has('enhanced-route-refresh')),
    enhancedRouteRefresh: cfg.enhancedRouteRefresh !== false && has('enhanced-route-refresh'),
    extendedMessage,
    extendedNextHop,
    gracefulRestart,
    llgr: has('llgr'),
    peerHostname: fqdn?.hostname,
    peerCapabilities: caps,
    decode: { as4, addPath: receive, extendedMessage, ebgp: peerAs !== cfg.localAs },
    encode: { as4, addPath: send, extendedMessage },
  };
}

/**
 * Connection collision (RFC 4271 §6.8, RFC 6286 §2.3): which connection survives when two exist.
 * Returns 'local' to keep the one WE initiated, 'remote' for the one the peer initiated.
 */
export function resolveCollision(localId: string, remoteId: string, localAs: number, remoteAs: number): 'local' | 'remote' {
  const l = ipToU32(localId);
  const r = ipToU32(remoteId);
  if (l !== r) return l > r ? 'local' : 'remote';
  return localAs > remoteAs ? 'local' : 'remote';
}
