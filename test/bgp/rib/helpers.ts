/** Builders for RIB tests. */
import type { Path, PathSource, PeerType } from '../../../bgp/rib/path.js';
import type { Family, PathAttributes } from '../../../bgp/types.js';
import type { GroupSettings } from '../../../bgp/rib/adj-rib-out.js';

export function src(id: string, type: PeerType = 'ibgp', extra: Partial<PathSource> = {}): PathSource {
  return { id, type, address: id, asn: 64512, routerId: id, rrClient: false, ...extra };
}

export function path(source: PathSource, attrs: PathAttributes, prefix = '10.0.0.0/24', pathId = 0, family: Family = 'ipv4-unicast'): Path {
  return { family, prefix, pathId, source, attrs: { origin: 0, asPath: [], nextHop: source.address, ...attrs }, stale: false };
}

export function seq(...asns: number[]): PathAttributes['asPath'] {
  return [{ type: 2, asns }];
}

/** An iBGP update group of local AS 64512 at 10.0.0.100 (spread and override per test). */
export const IBGP_GROUP: GroupSettings = {
  family: 'ipv4-unicast',
  type: 'ibgp',
  rrClient: false,
  nextHopMode: 'auto',
  localAddress: { 'ipv4-unicast': '10.0.0.100' },
  localAs: 64512,
  addPathTx: false,
  policyId: '',
};
