/**
 * The BGP decision process (RFC 4271 §9.1.2.2, RFC 4456 §9) as a list of named comparators.
 * Each returns < 0 when `a` is better, > 0 when `b` is better, 0 when the rule cannot decide.
 * The first rule that decides is the best-path reason shown by `tabbyctl bgp routes`.
 *
 *   1. higher LOCAL_PREF                    (missing = 100)
 *   2. locally originated over learned
 *   3. shorter AS_PATH                      (AS_SET counts 1, confederation segments 0)
 *   4. lower ORIGIN                         (IGP < EGP < INCOMPLETE)
 *   5. lower MED, only between paths from the same neighbour AS (missing = 0)
 *   6. eBGP over iBGP
 *      (IGP metric to the next hop: not applicable, we have no IGP)
 *   7. shorter CLUSTER_LIST
 *   8. lower ORIGINATOR_ID, else lower router id of the peer
 *   9. lower peer address
 *  10. lower received path id (ADD-PATH: several paths from one peer)
 *
 * Rules 1–6 define "equal cost": paths equal under them are ECMP candidates (multipath).
 */
import { AsPathSegmentType, Origin, type AsPathSegment } from '../types.js';
import { DEFAULT_LOCAL_PREF, type Path } from './path.js';

export type BestPathReason =
  | 'only-path'
  | 'local-pref'
  | 'local-origin'
  | 'as-path-length'
  | 'origin'
  | 'med'
  | 'ebgp-over-ibgp'
  | 'cluster-list-length'
  | 'router-id'
  | 'peer-address'
  | 'path-id'
  | 'equal';

export type Comparator = (a: Path, b: Path) => number;

export function asPathLength(segs: readonly AsPathSegment[] | undefined): number {
  if (!segs) return 0;
  let n = 0;
  for (const s of segs) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE) n += s.asns.length;
    else if (s.type === AsPathSegmentType.AS_SET) n += 1;
  }
  return n;
}

/** The AS a path was learned from (leftmost AS of the first AS_SEQUENCE), 0 for local/empty paths. */
export function neighborAs(p: Path): number {
  for (const s of p.attrs.asPath ?? []) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE && s.asns.length > 0) return s.asns[0] ?? 0;
    if (s.type === AsPathSegmentType.AS_SET) return 0;
  }
  return 0;
}

/** IPv4 dotted quad (router ids, v4 addresses) to an unsigned number; IPv6 compared as strings. */
function ipNum(ip: string): number {
  const p = ip.split('.');
  if (p.length !== 4) return NaN;
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}

export function compareIp(a: string, b: string): number {
  const x = ipNum(a);
  const y = ipNum(b);
  if (!Number.isNaN(x) && !Number.isNaN(y)) return x - y;
  return expandV6(a) < expandV6(b) ? -1 : expandV6(a) > expandV6(b) ? 1 : 0;
}

function expandV6(ip: string): string {
  if (!ip.includes(':')) return ip.padStart(39, '0');
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

export const byLocalPref: Comparator = (a, b) =>
  (b.attrs.localPref ?? DEFAULT_LOCAL_PREF) - (a.attrs.localPref ?? DEFAULT_LOCAL_PREF);

export const byLocalOrigin: Comparator = (a, b) =>
  (a.source.type === 'local' ? 0 : 1) - (b.source.type === 'local' ? 0 : 1);

export const byAsPathLength: Comparator = (a, b) => asPathLength(a.attrs.asPath) - asPathLength(b.attrs.asPath);

export const byOrigin: Comparator = (a, b) => (a.attrs.origin ?? Origin.INCOMPLETE) - (b.attrs.origin ?? Origin.INCOMPLETE);

export const byMed: Comparator = (a, b) => {
  if (neighborAs(a) !== neighborAs(b)) return 0;
  return (a.attrs.med ?? 0) - (b.attrs.med ?? 0);
};

export const byEbgpOverIbgp: Comparator = (a, b) =>
  (a.source.type === 'ebgp' ? 0 : 1) - (b.source.type === 'ebgp' ? 0 : 1);

export const byClusterListLength: Comparator = (a, b) =>
  (a.attrs.clusterList?.length ?? 0) - (b.attrs.clusterList?.length ?? 0);

export const byRouterId: Comparator = (a, b) =>
  compareIp(a.attrs.originatorId ?? a.source.routerId, b.attrs.originatorId ?? b.source.routerId);

export const byPeerAddress: Comparator = (a, b) => compareIp(a.source.address, b.source.address);

export const byPathId: Comparator = (a, b) => a.pathId - b.pathId;

/** The decision process in order; the index splits "equal cost" rules from tie-breakers. */
export const DECISION: ReadonlyArray<readonly [Exclude<BestPathReason, 'only-path' | 'equal'>, Comparator]> = [
  ['local-pref', byLocalPref],
  ['local-origin', byLocalOrigin],
  ['as-path-length', byAsPathLength],
  ['origin', byOrigin],
  ['med', byMed],
  ['ebgp-over-ibgp', byEbgpOverIbgp],
  ['cluster-list-length', byClusterListLength],
  ['router-id', byRouterId],
  ['peer-address', byPeerAddress],
  ['path-id', byPathId],
];
const EQUAL_COST_RULES = 6;

export interface Comparison {
  /** < 0: a better, > 0: b better, 0: identical under every rule. */
  result: number;
  reason: BestPathReason;
}

export function comparePaths(a: Path, b: Path): Comparison {
  for (const [reason, cmp] of DECISION) {
    const r = cmp(a, b);
    if (r !== 0) return { result: r, reason };
  }
  return { result: 0, reason: 'equal' };
}

/** Equal under the rules that matter for cost: the two paths may share traffic (ECMP). */
export function equalCost(a: Path, b: Path): boolean {
  for (let i = 0; i < EQUAL_COST_RULES; i++) {
    const rule = DECISION[i];
    if (rule && rule[1](a, b) !== 0) return false;
  }
  return true;
}

export interface Selection {
  best: Path | undefined;
  /** Why `best` beat the runner-up (the path it was last compared with that lost). */
  reason: BestPathReason;
  /** The best path first, then equal-cost paths with distinct next hops, at most maxPaths. */
  multipath: Path[];
}

/**
 * Pick the best path. Stale paths (graceful restart) only win when nothing fresh is left.
 * `maxPaths` > 1 enables ECMP.
 */
export function selectBest(paths: Iterable<Path>, maxPaths = 1): Selection {
  let best: Path | undefined;
  let reason: BestPathReason = 'only-path';
  const all: Path[] = [];
  for (const p of paths) {
    all.push(p);
    if (!best) {
      best = p;
      continue;
    }
    if (best.stale !== p.stale) {
      if (best.stale) best = p;
      continue;
    }
    const c = comparePaths(p, best);
    if (c.result < 0) best = p;
  }
  if (!best) return { best: undefined, reason: 'only-path', multipath: [] };
  // The reason is the rule that separated the best from its strongest competitor.
  let runnerUp: Path | undefined;
  for (const p of all) {
    if (p === best || p.stale !== best.stale) continue;
    if (!runnerUp || comparePaths(p, runnerUp).result < 0) runnerUp = p;
  }
  if (runnerUp) reason = comparePaths(best, runnerUp).reason;
  const multipath = [best];
  if (maxPaths > 1) {
    const seenNh = new Set([best.attrs.nextHop]);
    const candidates = all
      .filter((p) => p !== best && p.stale === best.stale && equalCost(p, best))
      .sort((x, y) => comparePaths(x, y).result);
    for (const p of candidates) {
      if (multipath.length >= maxPaths) break;
      if (seenNh.has(p.attrs.nextHop)) continue;
      seenNh.add(p.attrs.nextHop);
      multipath.push(p);
    }
  }
  return { best, reason, multipath };
}

/** All paths sorted best first (for route listings). */
export function sortPaths(paths: Iterable<Path>): Path[] {
  return [...paths].sort((a, b) => (a.stale !== b.stale ? (a.stale ? 1 : -1) : comparePaths(a, b).result));
}
