/**
 * The BGP attribute model shared by the codec (bgp/codec), the RIB (bgp/rib), policy and the
 * speaker. Pure data, no behaviour. Prefixes are canonical CIDR strings ("10.0.0.0/24",
 * "2001:db8::/32") so they key Maps directly.
 */

export type Family = 'ipv4-unicast' | 'ipv6-unicast';
export const AFI = { IPV4: 1, IPV6: 2 } as const;
export const SAFI = { UNICAST: 1 } as const;

export function familyOf(afi: number, safi: number): Family | undefined {
  if (safi !== SAFI.UNICAST) return undefined;
  if (afi === AFI.IPV4) return 'ipv4-unicast';
  if (afi === AFI.IPV6) return 'ipv6-unicast';
  return undefined;
}

export const Origin = { IGP: 0, EGP: 1, INCOMPLETE: 2 } as const;
export type Origin = (typeof Origin)[keyof typeof Origin];

export const AsPathSegmentType = { AS_SET: 1, AS_SEQUENCE: 2, AS_CONFED_SEQUENCE: 3, AS_CONFED_SET: 4 } as const;
export type AsPathSegmentType = (typeof AsPathSegmentType)[keyof typeof AsPathSegmentType];

export interface AsPathSegment {
  type: AsPathSegmentType;
  asns: number[];
}

/** Path attribute type codes (IANA). */
export const AttrType = {
  ORIGIN: 1,
  AS_PATH: 2,
  NEXT_HOP: 3,
  MULTI_EXIT_DISC: 4,
  LOCAL_PREF: 5,
  ATOMIC_AGGREGATE: 6,
  AGGREGATOR: 7,
  COMMUNITIES: 8,
  ORIGINATOR_ID: 9,
  CLUSTER_LIST: 10,
  MP_REACH_NLRI: 14,
  MP_UNREACH_NLRI: 15,
  EXTENDED_COMMUNITIES: 16,
  AS4_PATH: 17,
  AS4_AGGREGATOR: 18,
  LARGE_COMMUNITY: 32,
} as const;

export const AttrFlag = { OPTIONAL: 0x80, TRANSITIVE: 0x40, PARTIAL: 0x20, EXTENDED_LENGTH: 0x10 } as const;

/** An attribute the codec does not model, kept as bytes so it can be passed on (Partial bit set). */
export interface RawAttribute {
  flags: number;
  type: number;
  value: Uint8Array;
}

/**
 * Decoded path attributes of one UPDATE (MP_REACH/MP_UNREACH live on the update, not here).
 * AS4_PATH/AS4_AGGREGATOR are merged into asPath/aggregator by the codec when the session is 2-byte.
 * Objects of this type are treated as immutable once built: the RIB interns them and shares one
 * object among every route that carries the same attributes.
 */
export interface PathAttributes {
  origin?: Origin;
  asPath?: AsPathSegment[];
  /** IPv4 NEXT_HOP attribute (type 3). MP next hops are on the MP_REACH part of the update. */
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: string };
  /** RFC 1997 communities as 32-bit unsigned numbers (asn << 16 | value). */
  communities?: number[];
  originatorId?: string;
  clusterList?: string[];
  /** RFC 4360 extended communities, each 8 bytes as 16 lower-case hex chars. */
  extCommunities?: string[];
  /** RFC 8092 large communities [global admin, local 1, local 2]. */
  largeCommunities?: Array<[number, number, number]>;
  /** Unknown optional transitive attributes to pass on, and unknown non-transitive ones (dropped on export). */
  unknown?: RawAttribute[];
  /**
   * Not a wire attribute: the route's priority (kernel route metric), set by a BGPFilter
   * setPriority operation; never sent to peers.
   */
  priority?: number;
}

/** One NLRI entry; pathId is present only when ADD-PATH is negotiated for that direction and family. */
export interface Nlri {
  prefix: string;
  pathId?: number;
}
