/** Builders for RIB tests. */
import type { Path, PathSource, PeerType } from '../../../bgp/rib/path.js';
import type { Family, PathAttributes } from '../../../bgp/types.js';

export function src(id: string, type: PeerType = 'ibgp', extra: Partial<PathSource> = {}): PathSource {
  return { id, type, address: id, asn: 64512, routerId: id, rrClient: false, ...extra };
}

export function path(source: PathSource, attrs: PathAttributes, prefix = '10.0.0.0/24', pathId = 0, family: Family = 'ipv4-unicast'): Path {
  return { family, prefix, pathId, source, attrs: { origin: 0, asPath: [], nextHop: source.address, ...attrs }, stale: false };
}

export function seq(...asns: number[]): PathAttributes['asPath'] {
  return [{ type: 2, asns }];
}
