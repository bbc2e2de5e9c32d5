/**
 * Loc-RIB: one Destination per (family, prefix) holding every candidate path (keyed by source id +
 * received path id, so ADD-PATH paths coexist), the selected best path, its reason and the ECMP set.
 */
import type { Family } from '../types.js';
import { selectBest, type BestPathReason } from './decision.js';
import { pathKey, type Path } from './path.js';
import { SmallMap } from './small-map.js';

/**
 * One destination: its candidate paths keyed by source id + received path id (the destination *is*
 * that map: most prefixes have one path, and a separate map object per prefix costs memory at a
 * million routes), the best path, its reason and the ECMP set.
 */
export class Destination extends SmallMap<string, Path> {
  best: Path | undefined = undefined;
  reason: BestPathReason = 'only-path';
  /** The ECMP set when it has more than the best path (most destinations have one path). */
  private multi: Path[] | undefined = undefined;
  /** Local path ids for ADD-PATH transmission, made on first use (see txId). */
  tx: { ids: Map<string, number>; next: number } | undefined = undefined;

  constructor(readonly prefix: string) {
    super();
  }

  /** From the prefix (not stored: one field less for each of a million destinations). */
  get family(): Family {
    return familyOfPrefix(this.prefix);
  }

  /** The candidate paths, keyed by pathKey(source id, received path id). */
  get paths(): SmallMap<string, Path> {
    return this;
  }

  /** The best path first, then equal-cost paths with distinct next hops (empty without a best path). */
  get multipath(): Path[] {
    return this.multi ?? (this.best ? [this.best] : []);
  }

  set multipath(m: Path[]) {
    this.multi = m.length > 1 ? m : undefined;
  }
}

/** What changed at one destination after one operation. */
export interface DestChange {
  readonly dest: Destination;
  readonly previousBest: Path | undefined;
  /** The best path (or its attributes) changed. */
  readonly bestChanged: boolean;
  /** The ECMP set changed (next hops to install). */
  readonly multipathChanged: boolean;
  /** The path that was added, replaced or removed (ADD-PATH export sends just this one). */
  readonly path: Path;
  readonly removed: boolean;
}

/** The ADD-PATH path id we send for a path (assigned on first use, kept while the path exists). */
export function txId(d: Destination, pathKey: string): number {
  d.tx ??= { ids: new Map(), next: 1 };
  let id = d.tx.ids.get(pathKey);
  if (id === undefined) {
    id = d.tx.next++;
    d.tx.ids.set(pathKey, id);
  }
  return id;
}

export function familyOfPrefix(prefix: string): Family {
  return prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast';
}

export function destKey(family: Family, prefix: string): string {
  return family === 'ipv4-unicast' ? prefix : `6|${prefix}`;
}

function sameMultipath(a: readonly Path[], b: readonly Path[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class LocRib {
  private readonly dests = new Map<string, Destination>();
  /** Destinations with a best path, per family (kept up to date; status reads it in O(1)). */
  private readonly withBest: Record<Family, number> = { 'ipv4-unicast': 0, 'ipv6-unicast': 0 };

  constructor(private maxPaths = 1) {}

  setMaxPaths(n: number): void {
    this.maxPaths = Math.max(1, n);
  }

  get(family: Family, prefix: string): Destination | undefined {
    return this.dests.get(destKey(family, prefix));
  }

  destinations(): IterableIterator<Destination> {
    return this.dests.values();
  }

  get size(): number {
    return this.dests.size;
  }

  /** How many destinations have a best path, per family. */
  bestCounts(): Record<Family, number> {
    return { ...this.withBest };
  }

  /** Add or replace a path; returns what changed. */
  upsert(path: Path): DestChange {
    const k = destKey(path.family, path.prefix);
    let d = this.dests.get(k);
    if (!d) {
      d = new Destination(path.prefix);
      this.dests.set(k, d);
    }
    d.set(pathKey(path.source.id, path.pathId), path);
    return this.reselect(d, path, false);
  }

  /** Remove one path (source id + received path id); undefined when it was not there. */
  remove(family: Family, prefix: string, sourceId: string, pathId: number): DestChange | undefined {
    const k = destKey(family, prefix);
    const d = this.dests.get(k);
    if (!d) return undefined;
    const pk = pathKey(sourceId, pathId);
    const path = d.get(pk);
    if (!path) return undefined;
    d.delete(pk);
    d.tx?.ids.delete(pk);
    const change = this.reselect(d, path, true);
    if (d.size === 0) this.dests.delete(k);
    return change;
  }

  /** Re-run selection (e.g. after a stale flag changed). */
  refresh(d: Destination, path: Path): DestChange {
    return this.reselect(d, path, false);
  }

  private reselect(d: Destination, path: Path, removed: boolean): DestChange {
    const previousBest = d.best;
    const previousMulti = d.multipath;
    // One candidate (the common case): it is the best path, alone in the ECMP set.
    const only = d.size === 1 ? d.one() : undefined;
    const sel = only ? { best: only, reason: 'only-path' as const, multipath: [only] } : selectBest(d.values(), this.maxPaths);
    if (previousBest === undefined && sel.best !== undefined) this.withBest[d.family]++;
    else if (previousBest !== undefined && sel.best === undefined) this.withBest[d.family]--;
    d.best = sel.best;
    d.reason = sel.reason;
    d.multipath = sel.multipath;
    return {
      dest: d,
      previousBest,
      bestChanged: previousBest !== sel.best || (!removed && path === sel.best),
      multipathChanged: !sameMultipath(previousMulti, sel.multipath) || (!removed && sel.multipath.includes(path)),
      path,
      removed,
    };
  }
}
