/**
 * Loc-RIB: one Destination per (family, prefix) holding every candidate path (keyed by source id +
 * received path id, so ADD-PATH paths coexist), the selected best path, its reason and the ECMP set.
 */
import type { Family } from '../types.js';
import { selectBest, type BestPathReason } from './decision.js';
import { pathKey, type Path } from './path.js';
import { SmallMap } from './small-map.js';

export interface Destination {
  readonly family: Family;
  readonly prefix: string;
  readonly paths: SmallMap<string, Path>;
  best: Path | undefined;
  reason: BestPathReason;
  multipath: Path[];
  /** Local path ids for ADD-PATH transmission, stable while the path exists (made on first use). */
  txIds: Map<string, number> | undefined;
  nextTxId: number;
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
  d.txIds ??= new Map();
  let id = d.txIds.get(pathKey);
  if (id === undefined) {
    id = d.nextTxId++;
    d.txIds.set(pathKey, id);
  }
  return id;
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
      d = {
        family: path.family,
        prefix: path.prefix,
        paths: new SmallMap(),
        best: undefined,
        reason: 'only-path',
        multipath: [],
        txIds: undefined,
        nextTxId: 1,
      };
      this.dests.set(k, d);
    }
    const pk = pathKey(path.source.id, path.pathId);
    d.paths.set(pk, path);
    return this.reselect(d, path, false);
  }

  /** Remove one path (source id + received path id); undefined when it was not there. */
  remove(family: Family, prefix: string, sourceId: string, pathId: number): DestChange | undefined {
    const k = destKey(family, prefix);
    const d = this.dests.get(k);
    if (!d) return undefined;
    const pk = pathKey(sourceId, pathId);
    const path = d.paths.get(pk);
    if (!path) return undefined;
    d.paths.delete(pk);
    d.txIds?.delete(pk);
    const change = this.reselect(d, path, true);
    if (d.paths.size === 0) this.dests.delete(k);
    return change;
  }

  /** Re-run selection (e.g. after a stale flag changed). */
  refresh(d: Destination, path: Path): DestChange {
    return this.reselect(d, path, false);
  }

  private reselect(d: Destination, path: Path, removed: boolean): DestChange {
    const previousBest = d.best;
    const previousMulti = d.multipath;
    const sel = selectBest(d.paths.values(), this.maxPaths);
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
