/**
 * The protocol rules around the RIB, as pure functions:
 *  - import sanity: AS_PATH loop detection (with `allowLocalAs` tolerance), RFC 4456 loop drops
 *    (ORIGINATOR_ID = our router id, our cluster id in CLUSTER_LIST);
 *  - export eligibility: no iBGP → iBGP unless we reflect (RFC 4456 §8 client/non-client rules),
 *    never back to the source peer;
 *  - export attribute rewriting: AS_PATH prepend, NEXT_HOP self/keep, LOCAL_PREF only to iBGP,
 *    MED not passed to another AS, ORIGINATOR_ID/CLUSTER_LIST on reflection, unknown
 *    transitive attributes passed with the Partial bit, unknown non-transitive ones dropped.
 */
import { AsPathSegmentType, AttrFlag, type AsPathSegment, type Family, type PathAttributes } from '../types.js';
import { DEFAULT_LOCAL_PREF, type Path, type PathSource } from './path.js';

export interface LocalIdentity {
  asn: number;
  routerId: string;
  /** Route-reflector cluster id; defaults to the router id (RFC 4456 §7). */
  clusterId?: string;
}

export type ImportDrop = 'as-path-loop' | 'originator-is-self' | 'cluster-loop';

export interface ImportSettings {
  /** `allow local as N`: accept paths containing our AS up to N times. */
  allowLocalAs?: number;
}

export function countAs(segs: readonly AsPathSegment[] | undefined, asn: number): number {
  let n = 0;
  for (const s of segs ?? []) for (const a of s.asns) if (a === asn) n++;
  return n;
}

/** Why a received path must be dropped before policy, or undefined when it may enter the RIB. */
export function importCheck(
  source: PathSource,
  attrs: PathAttributes,
  local: LocalIdentity,
  settings: ImportSettings = {},
): ImportDrop | undefined {
  if (countAs(attrs.asPath, local.asn) > (settings.allowLocalAs ?? 0)) return 'as-path-loop';
  if (source.type === 'ibgp') {
    if (attrs.originatorId !== undefined && attrs.originatorId === local.routerId) return 'originator-is-self';
    const cluster = local.clusterId ?? local.routerId;
    if (attrs.clusterList?.includes(cluster)) return 'cluster-loop';
  }
  return undefined;
}

export type NextHopMode = 'auto' | 'self' | 'keep';

/** Everything about a receiving peer that shapes the attributes we send it (an update-group key). */
export interface ExportTarget {
  type: 'ibgp' | 'ebgp';
  rrClient: boolean;
  nextHopMode: NextHopMode;
  /** Our address on the session, per family (next hop self). */
  localAddress: Partial<Record<Family, string>>;
  /** The AS we present to this peer (prepended on eBGP). */
  localAs: number;
}

/** RFC 4456 §8 + RFC 4271 §9.2: may `path` be advertised to a peer of this kind at all? */
export function mayExport(path: Path, target: ExportTarget, reflector: boolean): boolean {
  return mayExportFrom(path.source, target, reflector);
}

/** mayExport by the path's source alone (all it depends on). */
export function mayExportFrom(source: PathSource, target: ExportTarget, reflector: boolean): boolean {
  if (target.type === 'ebgp' || source.type !== 'ibgp') return true;
  if (!reflector) return false;
  // Learned from iBGP: from a client → reflect to everyone; from a non-client → only to clients.
  return source.rrClient || target.rrClient;
}

/** `asn` in front of the AS_PATH (a copy), in the leading AS_SEQUENCE when it has room. */
export function prependAs(segs: readonly AsPathSegment[] | undefined, asn: number): AsPathSegment[] {
  const out = (segs ?? []).map((s) => ({ type: s.type, asns: [...s.asns] }));
  const first = out[0];
  if (first && first.type === AsPathSegmentType.AS_SEQUENCE && first.asns.length < 255) first.asns.unshift(asn);
  else out.unshift({ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn] });
  return out;
}

/** The attributes to send for `path` to `target` (before export policy), or undefined if it has no next hop. */
export function exportAttributes(
  path: Path,
  target: ExportTarget,
  local: LocalIdentity,
): PathAttributes | undefined {
  const a = path.attrs;
  const out: PathAttributes = { ...a };
  const self = target.localAddress[path.family];
  const learnedIbgp = path.source.type === 'ibgp';
  if (target.type === 'ebgp') {
    out.asPath = prependAs(a.asPath, target.localAs);
    delete out.localPref;
    delete out.originatorId;
    delete out.clusterList;
    // MED is not passed on to a third AS (RFC 4271 §5.1.4); our own routes' MED may go out.
    if (path.source.type !== 'local') delete out.med;
    out.nextHop = target.nextHopMode === 'keep' && path.source.type !== 'local' ? a.nextHop : self;
  } else {
    out.localPref = a.localPref ?? DEFAULT_LOCAL_PREF;
    if (path.source.type === 'local' || target.nextHopMode === 'self') out.nextHop = self;
    else out.nextHop = a.nextHop ?? self;
    if (learnedIbgp) {
      // Reflection (RFC 4456 §8): set ORIGINATOR_ID once, prepend our cluster id.
      out.originatorId = a.originatorId ?? path.source.routerId;
      out.clusterList = [local.clusterId ?? local.routerId, ...(a.clusterList ?? [])];
    } else {
      delete out.originatorId;
      delete out.clusterList;
    }
    out.asPath = a.asPath ? a.asPath.map((s) => ({ type: s.type, asns: [...s.asns] })) : [];
  }
  // The priority (kernel metric) is ours alone.
  if (out.priority !== undefined) delete out.priority;
  if (out.origin === undefined) out.origin = 0;
  if (a.unknown) {
    const passed = a.unknown
      .filter((u) => (u.flags & AttrFlag.TRANSITIVE) !== 0)
      .map((u) => ({ ...u, flags: u.flags | AttrFlag.PARTIAL }));
    if (passed.length) out.unknown = passed;
    else delete out.unknown;
  }
  if (out.nextHop === undefined) return undefined;
  return out;
}
