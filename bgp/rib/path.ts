/**
 * A path: one route to one prefix, learned from one source (a peer or local origination). The RIB
 * keys paths by source id + received path id, so ADD-PATH peers can give several paths per prefix.
 */
import type { Family, PathAttributes } from '../types.js';

export type PeerType = 'ibgp' | 'ebgp' | 'local';

/** What the decision process and the export rules need to know about where a path came from. */
export interface PathSource {
  /** Stable id of the peer ("10.0.0.2" or "10.0.0.2:1790"), or "local" for originated prefixes. */
  readonly id: string;
  readonly type: PeerType;
  /** Peer address (used as the last tie-breaker); "0.0.0.0" for local. */
  readonly address: string;
  /** Peer AS (local AS for local routes). */
  readonly asn: number;
  /** Peer BGP identifier (router id). */
  readonly routerId: string;
  /** The peer is a route-reflector client of ours. */
  readonly rrClient: boolean;
  /** Interface a local route belongs to (policy `interface` match); undefined for peers. */
  readonly interfaceName?: string;
}

export interface Path {
  readonly family: Family;
  readonly prefix: string;
  /** Path id as received (0 when ADD-PATH is not negotiated in that direction). */
  readonly pathId: number;
  readonly source: PathSource;
  /** Interned, frozen. `nextHop` holds the next hop for both families. */
  readonly attrs: Readonly<PathAttributes>;
  /** Graceful restart: kept from a session that went down, waiting for refresh or sweep. */
  stale: boolean;
}

export function pathKey(sourceId: string, pathId: number): string {
  return pathId === 0 ? sourceId : `${sourceId}#${pathId}`;
}

export const LOCAL_SOURCE: PathSource = Object.freeze({
  id: 'local',
  type: 'local',
  address: '0.0.0.0',
  asn: 0,
  routerId: '0.0.0.0',
  rrClient: false,
});

export const DEFAULT_LOCAL_PREF = 100;
