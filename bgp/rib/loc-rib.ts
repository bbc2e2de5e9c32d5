/**
 * Loc-RIB: one Destination per (family, prefix) holding every candidate path (keyed by source id +
 * received path id, so ADD-PATH paths coexist), the selected best path, its reason and the ECMP set.
 */
import type { Family, PathAttributes } from '../types.js';
import { formatV4 } from '../codec/nlri.js';
import { selectBest, type BestPathReason } from './decision.js';
import { pathKey, type Path, type PathSource } from './path.js';
import { SmallMap } from './small-map.js';
import { RefTable, V4Table } from './v4-table.js';

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

/**
 * A destination stored in the columnar table, made for a reader: a snapshot holding its one path.
 * Not live: the Loc-RIB promotes it to a stored Destination before anything changes it. ADD-PATH
 * ids asked of a view are assigned afresh (its one path gets 1), which is what a stored
 * destination would have given: a columnar destination has had that one path since it was made
 * (a second path promotes it for good, and the promoted object numbers its first path 1 too).
 */
export class V4View extends Destination {}

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
  /** A columnar IPv4 change: its address and length (readers may look the prefix up later instead of keeping objects). */
  readonly v4Addr?: number;
  readonly v4Len?: number;
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

/** Set by parseV4: the address (unsigned) and length of the last canonical IPv4 prefix parsed. */
let pAddr = 0;
let pLen = 0;

/**
 * Parse a canonical IPv4 prefix ("a.b.c.d/len": no leading zeros, host bits clear) into pAddr and
 * pLen; false for any other text (which keeps its string key: keys stay one-to-one with texts).
 */
function parseV4(prefix: string): boolean {
  let addr = 0;
  let v = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  const n = prefix.length;
  for (; i < n; i++) {
    const c = prefix.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && v === 0) return false; // leading zero
      v = v * 10 + (c - 48);
      digits++;
    } else if ((c === 46 && dots < 3) || (c === 47 && dots === 3)) {
      if (digits === 0 || v > 255) return false;
      addr = addr * 256 + v;
      v = 0;
      digits = 0;
      if (c === 47) break;
      dots++;
    } else return false;
  }
  if (i >= n) return false;
  let len = 0;
  for (i++, digits = 0; i < n; i++, digits++) {
    const c = prefix.charCodeAt(i);
    if (c < 48 || c > 57 || (digits === 1 && len === 0)) return false;
    len = len * 10 + (c - 48);
  }
  if (digits === 0 || len > 32 || addr % 2 ** (32 - len) !== 0) return false;
  pAddr = addr;
  pLen = len;
  return true;
}

/**
 * The Loc-RIB map key of a canonical IPv4 prefix: up to /24 a small integer (network bits, then
 * the length: < 2^29, a V8 small integer, cheap to hash), longer ones a number above that range.
 */
function v4Key(addr: number, len: number): number {
  return len <= 24 ? (addr / 256) * 32 + len : 2 ** 29 + addr * 64 + len;
}

/** The Loc-RIB's own map key: v4Key for canonical IPv4 prefixes, anything else its destKey string. */
function locKey(family: Family, prefix: string): number | string {
  if (family !== 'ipv4-unicast' || !parseV4(prefix)) return destKey(family, prefix);
  return v4Key(pAddr, pLen);
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

/** Flag bit of a columnar path: stale (graceful restart). */
const STALE = 1;

/** A stored IPv4 path (path id 0), made for a reader of the columnar table. */
function v4Path(prefix: string, attrs: Readonly<PathAttributes>, source: PathSource, stale: boolean): Path {
  return { family: 'ipv4-unicast', prefix, pathId: 0, source, attrs, stale };
}

/**
 * The change of a columnar destination (a route added, replaced or removed; always a best-path and
 * ECMP change). Its prefix text, paths and destination are made only when a listener reads them;
 * `dest` is the destination as it is when first read (like the live Destination of the object
 * path, which shows later changes of the same batch).
 */
export class V4Change implements DestChange {
  readonly bestChanged = true;
  readonly multipathChanged = true;
  private d: Destination | undefined = undefined;
  private prev: Path | undefined = undefined;
  private text: string | undefined;

  constructor(
    private readonly loc: LocRib,
    private readonly addr: number,
    private readonly len: number,
    prefix: string | undefined,
    /** The path before the change (none: a new destination). */
    private readonly prevAttrs: Readonly<PathAttributes> | undefined,
    private readonly prevSource: PathSource | undefined,
    /** The path added, or the one removed. */
    private readonly attrs: Readonly<PathAttributes>,
    /** Where the path added (or removed) came from. */
    readonly source: PathSource,
    readonly removed: boolean,
    private p: Path | undefined,
    /** Stale flags of the path before and of the path added or removed. */
    private readonly prevStale = false,
    private readonly stale = false,
  ) {
    this.text = prefix;
  }

  get v4Addr(): number {
    return this.addr;
  }

  get v4Len(): number {
    return this.len;
  }

  get prefix(): string {
    return (this.text ??= formatV4(this.addr, this.len));
  }

  get path(): Path {
    return (this.p ??= v4Path(this.prefix, this.attrs, this.source, this.stale));
  }

  get previousBest(): Path | undefined {
    if (this.removed) return this.path;
    if (!this.prevAttrs || !this.prevSource) return undefined;
    return (this.prev ??= v4Path(this.prefix, this.prevAttrs, this.prevSource, this.prevStale));
  }

  get dest(): Destination {
    return (this.d ??= this.loc.currentV4(this.addr, this.len, this.prefix, this.removed ? undefined : this.path));
  }
}

export class LocRib {
  /** Destinations kept as objects: several paths, ADD-PATH, stale, IPv6, local, policy-changed. */
  private readonly dests = new Map<number | string, Destination>();
  /** IPv4 destinations with one plain path (see v4-table.ts and Rib: most of a large table). */
  private readonly v4 = new V4Table();
  private readonly attrIds = new RefTable<Readonly<PathAttributes>>();
  private readonly srcIds = new RefTable<PathSource>(0x10000);
  /** Canonical IPv4 destinations in `dests` (numeric keys): when 0, no lookup there is needed. */
  private v4Objects = 0;
  /** Destinations with a best path, per family (kept up to date; status reads it in O(1)). */
  private readonly withBest: Record<Family, number> = { 'ipv4-unicast': 0, 'ipv6-unicast': 0 };

  constructor(
    private maxPaths = 1,
    /** Keep single plain IPv4 paths in the columnar table (false: objects only, as a reference). */
    private readonly columnar = true,
  ) {}

  setMaxPaths(n: number): void {
    this.maxPaths = Math.max(1, n);
  }

  /**
   * The destination of a prefix. One kept in the columnar table comes back as a V4View: a
   * snapshot to read; use getLive() for one to change in place.
   */
  get(family: Family, prefix: string): Destination | undefined {
    if (family === 'ipv4-unicast' && parseV4(prefix)) {
      const addr = pAddr;
      const len = pLen;
      if (this.v4.size > 0) {
        const slot = this.v4.find(addr, len);
        if (slot >= 0) return this.viewAt(slot, prefix, undefined);
      }
      return this.v4Objects > 0 ? this.dests.get(v4Key(addr, len)) : undefined;
    }
    return this.dests.get(destKey(family, prefix));
  }

  /** get(), a columnar destination first moved into a stored Destination (to change it in place). */
  getLive(family: Family, prefix: string): Destination | undefined {
    const d = this.get(family, prefix);
    return d instanceof V4View ? this.promote(d) : d;
  }

  /** Every destination (columnar ones as V4Views). Tolerates changes meanwhile; may then repeat some. */
  *destinations(): IterableIterator<Destination> {
    yield* this.dests.values();
    const t = this.v4;
    let gen = t.generation;
    for (let i = 0; i < t.capacity; i++) {
      if (t.generation !== gen) {
        // The table was rebuilt (slots moved): start over; readers treat a repeat as a no-op.
        gen = t.generation;
        i = -1;
        continue;
      }
      if (t.isLive(i)) yield this.viewAt(i, formatV4(t.addrAt(i), t.lenAt(i)), undefined);
    }
  }

  /** The destinations kept as objects only (not the columnar ones). */
  objectDestinations(): IterableIterator<Destination> {
    return this.dests.values();
  }

  get size(): number {
    return this.dests.size + this.v4.size;
  }

  /** How many destinations have a best path, per family. */
  bestCounts(): Record<Family, number> {
    return { ...this.withBest };
  }

  // ─── the columnar table (used by Rib for plain IPv4 routes read as numbers) ────────────────

  /** The slot of a columnar destination, or -1. */
  findV4(addr: number, len: number): number {
    return this.v4.size > 0 ? this.v4.find(addr, len) : -1;
  }

  /** Whether (addr, len) is stored as an object destination (then it is not columnar). */
  hasV4Object(addr: number, len: number): boolean {
    return this.v4Objects > 0 && this.dests.has(v4Key(addr, len));
  }

  v4SourceAt(slot: number): PathSource {
    return this.srcIds.get(this.v4.srcAt(slot));
  }

  v4AttrsAt(slot: number): Readonly<PathAttributes> {
    return this.attrIds.get(this.v4.attrAt(slot));
  }

  /**
   * Add a columnar destination with one path (none stored for (addr, len), columnar or not; the
   * caller holds the interner reference it hands over). Undefined when the table cannot take it.
   */
  insertV4(addr: number, len: number, attrs: Readonly<PathAttributes>, source: PathSource, prefix?: string, path?: Path): DestChange | undefined {
    if (!this.columnar) return undefined;
    const src = this.srcIds.acquire(source);
    if (src < 0) return undefined;
    this.v4.insert(addr, len, this.attrIds.acquire(attrs), src);
    this.withBest['ipv4-unicast']++;
    return new V4Change(this, addr, len, prefix, undefined, undefined, attrs, source, false, path);
  }

  /** Replace the path of a columnar destination (same source id); the old attributes' reference goes to the caller. */
  replaceV4(slot: number, addr: number, len: number, attrs: Readonly<PathAttributes>, source: PathSource, prefix?: string, path?: Path): DestChange | undefined {
    const src = this.srcIds.acquire(source);
    if (src < 0) return undefined;
    const oldAttr = this.v4.attrAt(slot);
    const oldSrc = this.v4.srcAt(slot);
    const prevAttrs = this.attrIds.get(oldAttr);
    const prevSource = this.srcIds.get(oldSrc);
    const prevStale = (this.v4.flagsAt(slot) & STALE) !== 0;
    this.v4.set(slot, this.attrIds.acquire(attrs), src);
    this.attrIds.release(oldAttr);
    this.srcIds.release(oldSrc);
    return new V4Change(this, addr, len, prefix, prevAttrs, prevSource, attrs, source, false, path, prevStale);
  }

  /** Remove a columnar destination; its attributes' reference goes to the caller. */
  removeV4(slot: number, addr: number, len: number, prefix?: string): DestChange {
    const attrs = this.v4AttrsAt(slot);
    const source = this.v4SourceAt(slot);
    const stale = this.v4StaleAt(slot);
    this.freeSlot(slot);
    this.withBest['ipv4-unicast']--;
    return new V4Change(this, addr, len, prefix, attrs, source, attrs, source, true, undefined, stale, stale);
  }

  v4StaleAt(slot: number): boolean {
    return (this.v4.flagsAt(slot) & STALE) !== 0;
  }

  /** Mark a columnar path stale (graceful restart); the change is a refresh of the same path. */
  markStaleV4(slot: number, addr: number, len: number): DestChange {
    const attrs = this.v4AttrsAt(slot);
    const source = this.v4SourceAt(slot);
    this.v4.setFlags(slot, this.v4.flagsAt(slot) | STALE);
    // Like the object path, where the path object itself turns stale: before and after show it so.
    return new V4Change(this, addr, len, undefined, attrs, source, attrs, source, false, undefined, true, true);
  }

  /** The (addr, len) of every columnar path from `sourceId`, as addr * 64 + len (for whole-peer jobs). */
  v4KeysOf(sourceId: string): number[] {
    const out: number[] = [];
    const t = this.v4;
    if (t.size === 0) return out;
    for (let i = 0; i < t.capacity; i++) if (t.isLive(i) && this.srcIds.get(t.srcAt(i)).id === sourceId) out.push(t.addrAt(i) * 64 + t.lenAt(i));
    return out;
  }

  /** The destination of (addr, len) now: a view of its columnar slot, its object, or an empty one. */
  currentV4(addr: number, len: number, prefix: string, hint: Path | undefined): Destination {
    const slot = this.findV4(addr, len);
    if (slot >= 0) return this.viewAt(slot, prefix, hint);
    if (this.v4Objects > 0) {
      const d = this.dests.get(v4Key(addr, len));
      if (d) return d;
    }
    return new V4View(prefix);
  }

  /** The destination of (addr, len) now (an empty view when there is none). */
  destinationV4(addr: number, len: number): Destination {
    return this.currentV4(addr, len, formatV4(addr, len), undefined);
  }

  private viewAt(slot: number, prefix: string, hint: Path | undefined): V4View {
    const attrs = this.v4AttrsAt(slot);
    const source = this.v4SourceAt(slot);
    const stale = this.v4StaleAt(slot);
    const p = hint && hint.attrs === attrs && hint.source === source && hint.stale === stale ? hint : v4Path(prefix, attrs, source, stale);
    const d = new V4View(prefix);
    d.set(source.id, p);
    return d;
  }

  private freeSlot(slot: number): void {
    this.attrIds.release(this.v4.attrAt(slot));
    this.srcIds.release(this.v4.srcAt(slot));
    this.v4.remove(slot);
  }

  /** Move a columnar destination into a stored Destination (its path object is the view's). */
  private promote(view: V4View): Destination {
    const path = view.one();
    if (!path || !parseV4(view.prefix)) throw new Error(`LocRib: ${view.prefix} is not a columnar destination`);
    const addr = pAddr;
    const len = pLen;
    const slot = this.v4.find(addr, len);
    if (slot >= 0) this.freeSlot(slot);
    const d = new Destination(view.prefix);
    d.set(path.source.id, path);
    this.dests.set(v4Key(addr, len), d);
    this.v4Objects++;
    return d;
  }

  // ─── changes ───────────────────────────────────────────────────────────────────────────────

  /** Add or replace a path; returns what changed. */
  upsert(path: Path): DestChange {
    return this.upsertIn(this.get(path.family, path.prefix), path);
  }

  /**
   * upsert() when the caller has looked the destination up already (undefined: none yet).
   * `plain`: the path is the whole Adj-RIB-In entry of its route (the Rib keeps nothing else for
   * it), so a lone IPv4 path with id 0 may live in the columnar table.
   */
  upsertIn(d: Destination | undefined, path: Path, plain = false): DestChange {
    const columnar = this.columnar && plain && path.pathId === 0 && !path.stale && path.family === 'ipv4-unicast';
    if (d instanceof V4View) {
      const cur = d.one();
      if (columnar && cur && cur.source.id === path.source.id && parseV4(d.prefix)) {
        const addr = pAddr;
        const len = pLen;
        const c = this.replaceV4(this.v4.find(addr, len), addr, len, path.attrs, path.source, d.prefix, path);
        if (c) return c;
      }
      d = this.promote(d);
    }
    if (!d) {
      if (columnar && parseV4(path.prefix)) {
        const c = this.insertV4(pAddr, pLen, path.attrs, path.source, path.prefix, path);
        if (c) return c;
      }
      d = new Destination(path.prefix);
      const k = locKey(path.family, path.prefix);
      this.dests.set(k, d);
      if (typeof k === 'number') this.v4Objects++;
    }
    const previousBest = d.best;
    const previousMulti = d.severalPaths();
    d.set(pathKey(path.source.id, path.pathId), path);
    return this.reselect(d, path, false, previousBest, previousMulti);
  }

  /** Remove one path (source id + received path id); undefined when it was not there. */
  remove(family: Family, prefix: string, sourceId: string, pathId: number): DestChange | undefined {
    const k = locKey(family, prefix);
    if (typeof k === 'number' && this.v4.size > 0) {
      const addr = pAddr;
      const len = pLen;
      const slot = this.v4.find(addr, len);
      if (slot >= 0) {
        if (pathId !== 0 || this.v4SourceAt(slot).id !== sourceId) return undefined;
        return this.removeV4(slot, addr, len, prefix);
      }
    }
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
    if (d.size === 0) {
      this.dests.delete(k);
      if (typeof k === 'number') this.v4Objects--;
    }
    return change;
  }

  /** Re-run selection (e.g. after a stale flag changed); `d` must be a stored one (getLive). */
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
