/**
 * Decoded BGP message shapes (a discriminated union on `type`) and the per-session codec options.
 */
import type { Family, Nlri, PathAttributes } from '../types.js';

export const MsgType = { OPEN: 1, UPDATE: 2, NOTIFICATION: 3, KEEPALIVE: 4, ROUTE_REFRESH: 5 } as const;

export const HEADER_LEN = 19;
export const MAX_MESSAGE_LEN = 4096;
export const MAX_EXTENDED_MESSAGE_LEN = 65535;
/** RFC 6793 AS_TRANS. */
export const AS_TRANS = 23456;

export const CapCode = {
  MULTIPROTOCOL: 1,
  ROUTE_REFRESH: 2,
  EXTENDED_NEXT_HOP: 5,
  EXTENDED_MESSAGE: 6,
  GRACEFUL_RESTART: 64,
  AS4: 65,
  ADD_PATH: 69,
  ENHANCED_ROUTE_REFRESH: 70,
  LLGR: 71,
  FQDN: 73,
} as const;

/** ADD-PATH send/receive field (RFC 7911 §4). */
export const AddPathMode = { RECEIVE: 1, SEND: 2, BOTH: 3 } as const;

export interface AfiSafi {
  afi: number;
  safi: number;
}

export type Capability =
  | { kind: 'multiprotocol'; afi: number; safi: number }
  | { kind: 'route-refresh' }
  | { kind: 'extended-next-hop'; tuples: Array<{ afi: number; safi: number; nextHopAfi: number }> }
  | { kind: 'extended-message' }
  | {
      kind: 'graceful-restart';
      /** R bit: the sender is restarting. */
      restarting: boolean;
      /** N bit (RFC 8538). */
      notification: boolean;
      /** Restart time in seconds (12 bits, max 4095). */
      restartTime: number;
      /** Per family; `forwarding` is the F bit (forwarding state preserved). */
      families: Array<{ afi: number; safi: number; forwarding: boolean }>;
    }
  | { kind: 'as4'; asn: number }
  | { kind: 'add-path'; families: Array<{ afi: number; safi: number; mode: number }> }
  | { kind: 'enhanced-route-refresh' }
  /** RFC 9494 long-lived GR: parsed and ignored (kept raw). */
  | { kind: 'llgr'; value: Uint8Array }
  | { kind: 'fqdn'; hostname: string; domain: string }
  | { kind: 'unknown'; code: number; value: Uint8Array };

export interface OpenMessage {
  type: 'open';
  version: number;
  /** The 2-byte "My Autonomous System" field (AS_TRANS when the real AS needs 4 bytes). */
  myAs: number;
  holdTime: number;
  bgpId: string;
  capabilities: Capability[];
}

/** Reachable NLRI of one family sharing one next hop. */
export interface ReachGroup {
  family: Family;
  nextHop: string;
  /** RFC 2545 32-byte next hop: the link-local part. */
  linkLocalNextHop?: string;
  nlri: Nlri[];
  /** True when carried in MP_REACH_NLRI (always for IPv6; for IPv4 with an IPv6 next hop or when sent so). */
  mp?: boolean;
}

export interface UnreachGroup {
  family: Family;
  nlri: Nlri[];
  mp?: boolean;
}

export interface UpdateMessage {
  type: 'update';
  attributes: PathAttributes;
  announce: ReachGroup[];
  withdraw: UnreachGroup[];
  /** Set when the UPDATE is an End-of-RIB marker (RFC 4724 §2), for any AFI/SAFI. */
  endOfRib?: { afi: number; safi: number; family: Family | undefined };
}

export interface NotificationMessage {
  type: 'notification';
  code: number;
  subcode: number;
  data: Uint8Array;
  /** RFC 9003 shutdown communication (Cease 2 / 4), when present and valid UTF-8. */
  shutdownMessage?: string;
}

export interface KeepaliveMessage {
  type: 'keepalive';
}

export const RouteRefreshSubtype = { REQUEST: 0, BORR: 1, EORR: 2 } as const;

export interface RouteRefreshMessage {
  type: 'route-refresh';
  afi: number;
  safi: number;
  /** 0 request, 1 BoRR, 2 EoRR (RFC 7313). */
  subtype: number;
  family: Family | undefined;
}

export type BgpMessage = OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

/** What the receiving side negotiated; tells the UPDATE decoder how to read the bytes. */
export interface DecodeOptions {
  /** Both sides announced AS4 (RFC 6793): AS_PATH/AGGREGATOR carry 4-byte ASNs. Default true. */
  as4?: boolean;
  /** Families for which we RECEIVE path identifiers (ADD-PATH negotiated in that direction). */
  addPath?: ReadonlySet<Family> | readonly Family[];
  /** RFC 8654 negotiated: messages up to 65535 bytes. */
  extendedMessage?: boolean;
  /** The peer is eBGP: LOCAL_PREF / ORIGINATOR_ID / CLUSTER_LIST from it are discarded (RFC 7606 §7.5, §7.9, §7.10). */
  ebgp?: boolean;
}

/** What the sending side negotiated. */
export interface EncodeOptions {
  /** The peer supports AS4. When false, AS_PATH/AGGREGATOR are 2-byte with AS_TRANS + AS4_PATH/AS4_AGGREGATOR. Default true. */
  as4?: boolean;
  /** Families for which we SEND path identifiers. */
  addPath?: ReadonlySet<Family> | readonly Family[];
  extendedMessage?: boolean;
}

export function hasFamily(set: ReadonlySet<Family> | readonly Family[] | undefined, f: Family): boolean {
  if (!set) return false;
  return 'has' in set ? set.has(f) : set.includes(f);
}

export function maxMessageLength(opts: { extendedMessage?: boolean } | undefined): number {
  return opts?.extendedMessage ? MAX_EXTENDED_MESSAGE_LEN : MAX_MESSAGE_LEN;
}
