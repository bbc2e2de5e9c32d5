/**
 * Loc-RIB: one Destination per (family, prefix) holding every candidate path (keyed by source id +
 * received path id, so ADD-PATH paths coexist), the selected best path, its reason and the ECMP set.
 */
import type { Family } from '../types.js';
import { selectBest, type BestPathReason } from './decision.js';
import { pathKey, type Path } from './path.js';
import { SmallMap } from './small-map.js';

/** What a destination keeps beyond its single path: a selection among several, ADD-PATH ids. */
interface Selected {
  best: Path | undefined;
  reason: BestPathReason;
  /** The ECMP set when it has more than the best path. */
  multi: Path[] | undefined;
  /** Local path ids for ADD-PATH transmission, made on first use (see txId). */
  tx: { ids: Map<string, number>; next: number } | undefined;
}

/**
 * One destination: its candidate paths keyed by source id + received path id, the best path, its
 * reason and the ECMP set. Most prefixes have exactly one path: the destination *is* the path map
 * (inline for one entry), and with one path the selection is implied (best = that path, reason
 * 'only-path', no ECMP), so nothing else is allocated — a million routes pay for a few fields each.
 */
export class Destination extends SmallMap<string, Path> {
  private sel: Selected | undefined = undefined;

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

  get best(): Path | undefined {
    return this.sel ? this.sel.best : this.one();
  }

  get reason(): BestPathReason {
    return this.sel ? this.sel.reason : 'only-path';
  }

  /** The best path first, then equal-cost paths with distinct next hops (empty without a best path). */
  get multipath(): Path[] {
    const best = this.best;
    return this.sel?.multi ?? (best ? [best] : []);
  }

  /** ADD-PATH ids (kept with the selection state; made on first use). */
  txIds(): NonNullable<Selected['tx']> {
    this.sel ??= { best: this.one(), reason: 'only-path', multi: undefined, tx: undefined };
    return (this.sel.tx ??= { ids: new Map(), next: 1 });
  }

  forgetTxId(pathKey: string): void {
    this.sel?.tx?.ids.delete(pathKey);
  }

  /** The stored ECMP set when it has several paths (else it is [best] or empty). */
  severalPaths(): Path[] | undefined {
    return this.sel?.multi;
  }

  /** Record a selection (`multi`: the ECMP set when longer than one); nothing is stored when it is implied by a single inline path. */
  select(best: Path | undefined, reason: BestPathReason, multi: Path[] | undefined): void {
    if (!this.sel?.tx && best !== undefined && best === this.one() && multi === undefined) {
      this.sel = undefined;
      return;
    }
    this.sel ??= { best, reason, multi, tx: undefined };
    this.sel.best = best;
    this.sel.reason = reason;
    this.sel.multi = multi;
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
  const tx = d.txIds();
  let id = tx.ids.get(pathKey);
  if (id === undefined) {
    id = tx.next++;
    tx.ids.set(pathKey, id);
  }
  return id;
}

export function familyOfPrefix(prefix: string): Family {
  return prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast';
}

/**
 * The Loc-RIB's own map key: a canonical IPv4 prefix up to /24 as a small integer (network bits,
 * then the length: < 2^29, a V8 small integer, far cheaper to hash and compare than a string for
 * a million fresh prefixes), anything else its destKey string. Only the exact canonical text gets
 * a number (no leading zeros, host bits clear), so keys stay one-to-one with the strings.
 */
function locKey(family: Family, prefix: string): number | string {
  if (family !== 'ipv4-unicast') return destKey(family, prefix);
  let addr = 0;
  let v = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  const n = prefix.length;
  for (; i < n; i++) {
    const c = prefix.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && v === 0) return prefix; // leading zero
      v = v * 10 + (c - 48);
      digits++;
    } else if ((c === 46 && dots < 3) || (c === 47 && dots === 3)) {
      if (digits === 0 || v > 255) return prefix;
      addr = addr * 256 + v;
      v = 0;
      digits = 0;
      if (c === 47) break;
      dots++;
    } else return prefix;
  }
  if (i >= n) return prefix;
  let len = 0;
  for (i++, digits = 0; i < n; i++, digits++) {
    const c = prefix.charCodeAt(i);
    if (c < 48 || c > 57 || (digits === 1 && len === 0)) return prefix;
    len = len * 10 + (c - 48);
  }
  // addr < 2^32: the low 8 bits (and those past `len`) must be clear for the key to be exact.
  if (digits === 0 || len > 24 || addr % 256 !== 0 || (addr / 256) % 2 ** (24 - len) !== 0) return prefix;
  return (addr / 256) * 32 + len;
}

export function destKey(family: Family, prefix: string): string {
  return family === 'ipv4-unicast' ? prefix : `6|${prefix}`;
}

/** Same ECMP set? Each is given as best + the list when longer than one (no arrays made per route). */
function sameMultipath(bestA: Path | undefined, a: readonly Path[] | undefined, bestB: Path | undefined, b: readonly Path[] | undefined): boolean {
  if (!a || !b) return !a && !b && bestA === bestB;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class LocRib {
  private readonly dests = new Map<number | string, Destination>();
  /** Destinations with a best path, per family (kept up to date; status reads it in O(1)). */
  private readonly withBest: Record<Family, number> = { 'ipv4-unicast': 0, 'ipv6-unicast': 0 };

  constructor(private maxPaths = 1) {}

  setMaxPaths(n: number): void {
    this.maxPaths = Math.max(1, n);
  }

  get(family: Family, prefix: string): Destination | undefined {
    return this.dests.get(locKey(family, prefix));
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
    return this.upsertIn(this.get(path.family, path.prefix), path);
  }

  /** upsert() when the caller has looked the destination up already (undefined: none yet). */
  upsertIn(d: Destination | undefined, path: Path): DestChange {
    if (!d) {
      d = new Destination(path.prefix);
      this.dests.set(locKey(path.family, path.prefix), d);
    }
    const previousBest = d.best;
    const previousMulti = d.severalPaths();
    d.set(pathKey(path.source.id, path.pathId), path);
    return this.reselect(d, path, false, previousBest, previousMulti);
  }

  /** Remove one path (source id + received path id); undefined when it was not there. */
  remove(family: Family, prefix: string, sourceId: string, pathId: number): DestChange | undefined {
    const k = locKey(family, prefix);
    const d = this.dests.get(k);
    if (!d) return undefined;
    const pk = pathKey(sourceId, pathId);
    const path = d.get(pk);
    if (!path) return undefined;
    const previousBest = d.best;
    const previousMulti = d.severalPaths();
    d.delete(pk);
    d.forgetTxId(pk);
    const change = this.reselect(d, path, true, previousBest, previousMulti);
    if (d.size === 0) this.dests.delete(k);
    return change;
  }

  /** Re-run selection (e.g. after a stale flag changed). */
  refresh(d: Destination, path: Path): DestChange {
    return this.reselect(d, path, false, d.best, d.severalPaths());
  }

  /** Select again after a change; `previousBest`/`previousMulti` are from before it. */
  private reselect(d: Destination, path: Path, removed: boolean, previousBest: Path | undefined, previousMulti: readonly Path[] | undefined): DestChange {
    let best: Path | undefined;
    let reason: BestPathReason = 'only-path';
    let multi: Path[] | undefined;
    // One candidate (the common case): it is the best path, alone in the ECMP set.
    const only = d.size === 1 ? d.one() : undefined;
    if (only) best = only;
    else {
      const sel = selectBest(d.values(), this.maxPaths);
      best = sel.best;
      reason = sel.reason;
      if (sel.multipath.length > 1) multi = sel.multipath;
    }
    if (previousBest === undefined && best !== undefined) this.withBest[path.family]++;
    else if (previousBest !== undefined && best === undefined) this.withBest[path.family]--;
    d.select(best, reason, multi);
    return {
      dest: d,
      previousBest,
      bestChanged: previousBest !== best || (!removed && path === best),
      multipathChanged: !sameMultipath(previousBest, previousMulti, best, multi) || (!removed && (multi ? multi.includes(path) : path === best)),
      path,
      removed,
    };
  }

}
