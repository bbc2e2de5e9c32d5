/**
 * Adj-RIB-Out with update groups. Peers whose exported attributes would be identical (same family,
 * peer type, RR client flag, next-hop mode and address, local AS, export policy, ADD-PATH send)
 * share one group: the export attributes are computed and interned once per group, and the same
 * OutBatch object goes to every member that needs no split-horizon exception, so a transport can
 * encode it once (cache by batch identity).
 *
 *   Loc-RIB DestChange ─► group.desired(dest) ─► diff vs group.out ─► deltas ─► per-peer OutBatch
 */
import type { Family, PathAttributes } from '../types.js';
import type { AttrInterner } from './intern.js';
import { V4Change, destKey, txId, type DestChange, type Destination, type LocRib } from './loc-rib.js';
import type { Path } from './path.js';
import { SmallMap } from './small-map.js';
import { exportAttributes, mayExport, mayExportFrom, type ExportTarget, type LocalIdentity } from './rules.js';

export interface ExportContext {
  family: Family;
  prefix: string;
  path: Path;
  attrs: Readonly<PathAttributes>;
}

export interface GroupSettings extends ExportTarget {
  family: Family;
  /** ADD-PATH negotiated in the send direction: advertise every path with a local path id. */
  addPathTx: boolean;
  /** Identifies the export policy + prefix advertisements (part of the group key). */
  policyId: string;
  /** Export policy: false filters the route out; attributes replace the exported ones. */
  accept?: (ctx: ExportContext) => boolean | Readonly<PathAttributes>;
  /** Per-prefix attribute additions (prefixAdvertisements communities). */
  decorate?: (prefix: string, attrs: PathAttributes) => PathAttributes;
}

export interface OutRoute {
  family: Family;
  prefix: string;
  /** Local path id (0 without ADD-PATH). */
  pathId: number;
}

/** Announcements sharing one attribute object, ready to become UPDATE messages. */
export interface OutAnnounce {
  attrs: Readonly<PathAttributes>;
  family: Family;
  nlri: OutRoute[];
}

export interface OutBatch {
  announce: OutAnnounce[];
  withdraw: OutRoute[];
}

interface OutEntry {
  attrs: Readonly<PathAttributes>;
  sourceId: string;
}

interface OutTable {
  family: Family;
  prefix: string;
  entries: SmallMap<number, OutEntry>;
}

interface Delta {
  family: Family;
  prefix: string;
  pathId: number;
  next: OutEntry | undefined;
  prev: OutEntry | undefined;
}

const NO_DELTAS: readonly Delta[] = Object.freeze([]);

export function groupKey(s: GroupSettings): string {
  const selfAddr = s.localAddress[s.family] ?? '';
  return JSON.stringify([s.family, s.type, s.rrClient, s.nextHopMode, selfAddr, s.localAs, s.addPathTx, s.policyId]);
}

export class UpdateGroup {
  readonly members = new Set<string>();
  /** destKey → the prefix and its advertised entries by local path id. */
  readonly out = new Map<string, OutTable>();
  private readonly perSource = new Map<string, number>();
  private size = 0;
  private cache = new WeakMap<object, Map<string, Readonly<PathAttributes> | null>>();

  constructor(
    readonly key: string,
    readonly settings: GroupSettings,
    private readonly interner: AttrInterner,
  ) {}

  /** Routes this group advertises to `peerId` (split horizon excluded). */
  advertisedTo(peerId: string): number {
    return this.size - (this.perSource.get(peerId) ?? 0);
  }

  /** Export attributes of one path, cached per source attribute object (policy is per prefix). */
  private exportOne(path: Path, local: LocalIdentity, reflector: boolean): Readonly<PathAttributes> | undefined {
    const s = this.settings;
    if (path.family !== s.family || !mayExport(path, s, reflector)) return undefined;
    let perAttrs = this.cache.get(path.attrs);
    if (!perAttrs) {
      perAttrs = new Map();
      this.cache.set(path.attrs, perAttrs);
    }
    const ck = `${path.source.id}|${path.source.type}`;
    let base = perAttrs.get(ck);
    if (base === undefined) {
      const a = exportAttributes(path, s, local);
      base = a ? this.interner.intern(a) : null;
      // The cache holds no reference: a released object is re-registered as is when interned again.
      if (base) this.interner.release(base);
      perAttrs.set(ck, base);
    }
    if (base === null) return undefined;
    let out: Readonly<PathAttributes> = base;
    if (s.accept) {
      const r = s.accept({ family: path.family, prefix: path.prefix, path, attrs: base });
      if (r === false) return undefined;
      if (r !== true) out = r;
    }
    // Each returned object carries one reference, owned by the entry that stores it.
    return this.interner.intern(s.decorate ? s.decorate(path.prefix, out) : out);
  }

  private desired(d: Destination, local: LocalIdentity, reflector: boolean): Map<number, OutEntry> {
    const want = new Map<number, OutEntry>();
    if (this.settings.addPathTx) {
      for (const [pk, p] of d.paths) {
        const attrs = this.exportOne(p, local, reflector);
        if (attrs) want.set(txId(d, pk), { attrs, sourceId: p.source.id });
      }
    } else if (d.best) {
      const attrs = this.exportOne(d.best, local, reflector);
      if (attrs) want.set(0, { attrs, sourceId: d.best.source.id });
    }
    return want;
  }

  /** Recompute one destination (or a removed one: `d.paths` empty) and return what changed. */
  update(family: Family, prefix: string, d: Destination | undefined, local: LocalIdentity, reflector: boolean): readonly Delta[] {
    const k = destKey(family, prefix);
    const have = this.out.get(k)?.entries;
    let want: Map<number, OutEntry>;
    if (!have && !this.settings.addPathTx) {
      // Nothing advertised yet and only the best path can be: decide without building a map when
      // it is not exported (a table learned from an iBGP peer, for the other iBGP peers).
      const best = d && d.paths.size > 0 ? d.best : undefined;
      const attrs = best ? this.exportOne(best, local, reflector) : undefined;
      if (!best || !attrs) return NO_DELTAS;
      want = new Map([[0, { attrs, sourceId: best.source.id }]]);
    } else want = d && d.paths.size > 0 ? this.desired(d, local, reflector) : new Map<number, OutEntry>();
    const deltas: Delta[] = [];
    if (have) {
      for (const [id, prev] of have) {
        const next = want.get(id);
        if (next && next.attrs === prev.attrs && next.sourceId === prev.sourceId) {
          this.interner.release(next.attrs);
          want.delete(id);
          continue;
        }
        deltas.push({ family, prefix, pathId: id, next, prev });
      }
    }
    for (const [id, next] of want) if (!have?.has(id)) deltas.push({ family, prefix, pathId: id, next, prev: undefined });
    if (deltas.length === 0) return deltas;
    const table = have ?? new SmallMap<number, OutEntry>();
    if (!have) this.out.set(k, { family, prefix, entries: table });
    for (const dl of deltas) {
      if (dl.prev) {
        this.interner.release(dl.prev.attrs);
        this.size--;
        this.perSource.set(dl.prev.sourceId, (this.perSource.get(dl.prev.sourceId) ?? 1) - 1);
      }
      if (dl.next) {
        table.set(dl.pathId, dl.next);
        this.size++;
        this.perSource.set(dl.next.sourceId, (this.perSource.get(dl.next.sourceId) ?? 0) + 1);
      } else table.delete(dl.pathId);
    }
    if (table.size === 0) this.out.delete(k);
    return deltas;
  }

  /** Everything currently advertised, as deltas from nothing (initial dump for a new member). */
  *dump(): IterableIterator<Delta> {
    for (const t of this.out.values())
      for (const [id, e] of t.entries) yield { family: t.family, prefix: t.prefix, pathId: id, next: e, prev: undefined };
  }

  /** Entries advertised to `peerId` (split horizon applied), keyed by prefix and path id. */
  visibleTo(peerId: string): Map<string, Delta> {
    const m = new Map<string, Delta>();
    for (const d of this.dump()) if (d.next && d.next.sourceId !== peerId) m.set(`${d.prefix}#${d.pathId}`, d);
    return m;
  }

  /** Forget cached export attributes (local identity changed). */
  resetCache(): void {
    this.cache = new WeakMap();
  }

  /** Drop all entries (group deleted). */
  clear(): void {
    for (const t of this.out.values()) for (const e of t.entries.values()) this.interner.release(e.attrs);
    this.out.clear();
    this.perSource.clear();
    this.size = 0;
  }
}

/** Build per-peer batches from group deltas; members without split-horizon exceptions share one object. */
function batchesFor(members: Iterable<string>, deltas: readonly Delta[]): Map<string, OutBatch> {
  const out = new Map<string, OutBatch>();
  const touchedSources = new Set<string>();
  for (const d of deltas) {
    if (d.next) touchedSources.add(d.next.sourceId);
    if (d.prev) touchedSources.add(d.prev.sourceId);
  }
  let shared: OutBatch | undefined;
  for (const peer of members) {
    if (!touchedSources.has(peer)) {
      shared ??= buildBatch(deltas, undefined);
      if (shared.announce.length || shared.withdraw.length) out.set(peer, shared);
      continue;
    }
    const b = buildBatch(deltas, peer);
    if (b.announce.length || b.withdraw.length) out.set(peer, b);
  }
  return out;
}

function buildBatch(deltas: readonly Delta[], splitPeer: string | undefined): OutBatch {
  const groups = new Map<Readonly<PathAttributes>, OutAnnounce>();
  const withdraw: OutRoute[] = [];
  for (const d of deltas) {
    const next = d.next && d.next.sourceId !== splitPeer ? d.next : undefined;
    const prev = d.prev && d.prev.sourceId !== splitPeer ? d.prev : undefined;
    const r: OutRoute = { family: d.family, prefix: d.prefix, pathId: d.pathId };
    if (next) {
      let g = groups.get(next.attrs);
      if (!g) {
        g = { attrs: next.attrs, family: d.family, nlri: [] };
        groups.set(next.attrs, g);
      }
      g.nlri.push(r);
    } else if (prev) withdraw.push(r);
  }
  return { announce: [...groups.values()], withdraw };
}

const FAMILIES: readonly Family[] = ['ipv4-unicast', 'ipv6-unicast'];

function memberKey(peerId: string, family: Family): string {
  return `${family}|${peerId}`;
}

export type OutListener = (peerId: string, batch: OutBatch) => void;

export class AdjRibOut {
  private readonly groups = new Map<string, UpdateGroup>();
  private readonly peerGroup = new Map<string, UpdateGroup>();
  private readonly listeners: OutListener[] = [];

  constructor(
    private readonly loc: LocRib,
    private readonly interner: AttrInterner,
    private local: LocalIdentity,
    private reflector: boolean,
    /** Destinations per event-loop turn when a peer joins. */
    private readonly chunkSize = 5000,
  ) {}

  setLocal(local: LocalIdentity, reflector: boolean): void {
    this.local = local;
    this.reflector = reflector;
  }

  onBatch(l: OutListener): void {
    this.listeners.push(l);
  }

  groupOf(peerId: string, family: Family): UpdateGroup | undefined {
    return this.peerGroup.get(memberKey(peerId, family));
  }

  get groupCount(): number {
    return this.groups.size;
  }

  advertisedTo(peerId: string): number {
    let n = 0;
    for (const f of FAMILIES) n += this.peerGroup.get(memberKey(peerId, f))?.advertisedTo(peerId) ?? 0;
    return n;
  }

  /**
   * Put a peer (whose session is up) in the group for its settings and send it the full table;
   * resolves when the whole table has been handed out (then send End-of-RIB). A new group computes
   * its table from the Loc-RIB, joining an existing one reuses its table; both run in chunks that
   * yield to the event loop. Changes arriving meanwhile are safe: group updates are idempotent
   * diffs. Moving between groups (settings changed) sends only the difference.
   */
  join(peerId: string, settings: GroupSettings): Promise<void> {
    const mk = memberKey(peerId, settings.family);
    if (this.peerGroup.has(mk)) {
      this.rejoin(peerId, settings);
      return Promise.resolve();
    }
    const key = groupKey(settings);
    let g = this.groups.get(key);
    const fresh = !g;
    if (!g) {
      g = new UpdateGroup(key, settings, this.interner);
      this.groups.set(key, g);
    }
    g.members.add(peerId);
    this.peerGroup.set(mk, g);
    const group = g;
    const family = settings.family;
    const dests = this.loc.destinations();
    const dump = group.dump();
    return new Promise((resolve) => {
      const step = (): void => {
        if (this.peerGroup.get(mk) !== group) return resolve();
        const deltas: Delta[] = [];
        let n = 0;
        let done = false;
        while (n++ < this.chunkSize) {
          if (fresh) {
            const it = dests.next();
            if (it.done) {
              done = true;
              break;
            }
            const d = it.value;
            if (d.family === family) deltas.push(...group.update(d.family, d.prefix, d, this.local, this.reflector));
          } else {
            const it = dump.next();
            if (it.done) {
              done = true;
              break;
            }
            deltas.push(it.value);
          }
        }
        if (fresh) for (const [peer, b] of batchesFor(group.members, deltas)) this.emit(peer, b);
        else this.emit(peerId, buildBatch(deltas, peerId));
        if (done) resolve();
        else setImmediate(step);
      };
      step();
    });
  }

  /** Settings changed: move to the right group and send the difference (synchronous, rare). */
  private rejoin(peerId: string, settings: GroupSettings): void {
    const before = this.peerGroup.get(memberKey(peerId, settings.family))?.visibleTo(peerId);
    this.leave(peerId, settings.family);
    const key = groupKey(settings);
    let g = this.groups.get(key);
    if (!g) {
      g = new UpdateGroup(key, settings, this.interner);
      this.groups.set(key, g);
      for (const d of this.loc.destinations()) if (d.family === settings.family) g.update(d.family, d.prefix, d, this.local, this.reflector);
    }
    g.members.add(peerId);
    this.peerGroup.set(memberKey(peerId, settings.family), g);
    const deltas: Delta[] = [];
    const after = g.visibleTo(peerId);
    for (const [k, e] of after) {
      const prev = before?.get(k);
      if (!prev || prev.next?.attrs !== e.next?.attrs) deltas.push(prev ? { ...e, prev: prev.next } : e);
    }
    if (before) for (const [k, e] of before) if (!after.has(k)) deltas.push({ ...e, next: undefined, prev: e.next });
    this.emit(peerId, buildBatch(deltas, peerId));
  }

  /** Remove a peer from its group(s) (session down); a group goes when empty. */
  leave(peerId: string, family?: Family): void {
    for (const f of family ? [family] : FAMILIES) {
      const mk = memberKey(peerId, f);
      const g = this.peerGroup.get(mk);
      if (!g) continue;
      this.peerGroup.delete(mk);
      g.members.delete(peerId);
      if (g.members.size === 0) {
        g.clear();
        this.groups.delete(g.key);
      }
    }
  }

  /** Feed Loc-RIB changes; emits one batch per peer with something to send. */
  apply(changes: readonly DestChange[]): void {
    if (this.groups.size === 0) return;
    // Change by change: group updates are diffs against what the group advertises, so a
    // destination changed twice in one batch costs a second look, not a second advertisement.
    const perGroup = new Map<UpdateGroup, Delta[]>();
    for (const c of changes) {
      // A columnar change (one IPv4 path added, replaced or removed) is looked at without making
      // its destination when the group advertises nothing for the prefix and would not export the path.
      const v4 = c instanceof V4Change ? c : undefined;
      const family = v4 ? 'ipv4-unicast' : c.dest.family;
      let live: Destination | undefined | null = null;
      for (const g of this.groups.values()) {
        if (g.settings.family !== family) continue;
        if (!g.settings.addPathTx && !c.bestChanged) continue;
        if (v4 && (v4.removed || !mayExportFrom(v4.source, g.settings, this.reflector)) && (g.out.size === 0 || !g.out.has(v4.prefix))) continue;
        // The destination as it is now (an emptied one may have been replaced since).
        if (live === null) live = c.dest.size > 0 ? c.dest : this.loc.get(c.dest.family, c.dest.prefix);
        const deltas = g.update(family, c.dest.prefix, live, this.local, this.reflector);
        if (deltas.length === 0) continue;
        let list = perGroup.get(g);
        if (!list) perGroup.set(g, (list = []));
        list.push(...deltas);
      }
    }
    for (const [g, deltas] of perGroup) for (const [peer, b] of batchesFor(g.members, deltas)) this.emit(peer, b);
  }

  /** Recompute every group from the Loc-RIB (export policy or local identity changed). */
  refreshAll(): void {
    for (const g of this.groups.values()) {
      g.resetCache();
      const deltas: Delta[] = [];
      const done = new Set<string>();
      for (const d of this.loc.destinations()) {
        if (d.family !== g.settings.family) continue;
        done.add(destKey(d.family, d.prefix));
        deltas.push(...g.update(d.family, d.prefix, d, this.local, this.reflector));
      }
      for (const [k, t] of [...g.out]) if (!done.has(k)) deltas.push(...g.update(t.family, t.prefix, undefined, this.local, this.reflector));
      for (const [peer, b] of batchesFor(g.members, deltas)) this.emit(peer, b);
    }
  }

  private emit(peerId: string, b: OutBatch): void {
    if (b.announce.length === 0 && b.withdraw.length === 0) return;
    for (const l of this.listeners) l(peerId, b);
  }
}
