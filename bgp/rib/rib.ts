/**
 * The RIB engine: Adj-RIB-In per peer (pre- and post-policy), the Loc-RIB, and the import pipeline
 *
 *   peer UPDATE ops ──► queue ──(chunks, yields to the event loop)──►
 *     Adj-RIB-In pre ──► importCheck (loops) ──► import policy ──► intern ──► Adj-RIB-In post
 *       ──► Loc-RIB (decision process) ──► DestChange batches ──► listeners (Adj-RIB-Out, FIB)
 *
 * Work is processed in slices of at most `chunkSize` prefixes and `sliceMs` milliseconds; between
 * slices the engine yields with
 * setImmediate so keepalives and hold timers are never starved by a large table.
 */
import type { Family, Nlri, PathAttributes } from '../types.js';
import { forEachV4, formatV4, type PackedNlri } from '../codec/nlri.js';
import { AttrInterner } from './intern.js';
import { LocRib, destKey, type DestChange, type Destination } from './loc-rib.js';
import { LOCAL_SOURCE, DEFAULT_LOCAL_PREF, pathKey, type Path, type PathSource } from './path.js';
import { importCheck, type ImportDrop, type ImportSettings, type LocalIdentity } from './rules.js';

export type RibOp =
  | { kind: 'announce'; family: Family; prefix: string; pathId?: number; attrs: PathAttributes }
  | { kind: 'withdraw'; family: Family; prefix: string; pathId?: number }
  /** Every prefix of one UPDATE group with one attribute set (no per-prefix operation objects). */
  | { kind: 'announce-nlri'; family: Family; nlri: readonly Nlri[]; attrs: PathAttributes }
  | { kind: 'withdraw-nlri'; family: Family; nlri: readonly Nlri[] }
  /** The IPv4 prefixes of one UPDATE field as wire bytes (read as numbers: no per-prefix objects). */
  | { kind: 'announce-v4'; nlri: PackedNlri; attrs: PathAttributes }
  | { kind: 'withdraw-v4'; nlri: PackedNlri };

/** Prefixes an operation covers. */
export function opSize(op: RibOp): number {
  switch (op.kind) {
    case 'announce-nlri':
    case 'withdraw-nlri':
      return op.nlri.length;
    case 'announce-v4':
    case 'withdraw-v4':
      return op.nlri.count;
    default:
      return 1;
  }
}

export interface ImportContext {
  family: Family;
  prefix: string;
  source: PathSource;
  attrs: Readonly<PathAttributes>;
}

export interface RibPeer {
  source: PathSource;
  import?: ImportSettings;
  /** Import policy: false rejects the route (kept in pre-policy only); attributes replace the route's. */
  accept?: (ctx: ImportContext) => boolean | Readonly<PathAttributes>;
  /** Maximum accepted prefixes; exceeding it raises a 'max-prefix' notice (the session sends Cease 1). */
  maxPrefixes?: number;
}

export type RibNotice =
  | { kind: 'max-prefix'; peerId: string; limit: number; count: number }
  | { kind: 'import-drop'; peerId: string; prefix: string; reason: ImportDrop };

export interface RibOptions {
  local: LocalIdentity;
  maxPaths?: number;
  /** Prefixes (operations) per event-loop turn at most. Default 20000. */
  chunkSize?: number;
  /**
   * Milliseconds of work per event-loop turn at most (checked every few hundred prefixes). Default
   * 10: short enough for timers, long enough that a table transfer is processed about as fast as
   * it is read, instead of piling up decoded UPDATEs in memory.
   */
  sliceMs?: number;
  /** Keep the received attributes of rejected routes (soft reconfiguration inbound). Default true. */
  keepPrePolicy?: boolean;
  interner?: AttrInterner;
  /** Keep single plain IPv4 routes in the Loc-RIB's columnar table. Default true (false: for comparison tests). */
  columnar?: boolean;
}

/**
 * An Adj-RIB-In entry that the accepted path alone cannot represent: a rejected route (pre-policy
 * attributes kept for soft reconfiguration), or one whose accepted attributes differ from the
 * received ones. An accepted route with unchanged attributes is stored as its Path alone (the
 * received attributes are the path's), which is what nearly every route of a large table is.
 */
class InEntry {
  constructor(
    readonly family: Family,
    readonly prefix: string,
    readonly pathId: number,
    /** Pre-policy attributes (interned, one reference). */
    readonly pre: Readonly<PathAttributes>,
    /** Post-policy path, when accepted (its attrs hold their own reference). */
    readonly post: Path | undefined,
  ) {}
}

type InValue = Path | InEntry;

const postOf = (v: InValue): Path | undefined => (v instanceof InEntry ? v.post : v);
const preOf = (v: InValue): Readonly<PathAttributes> => (v instanceof InEntry ? v.pre : v.attrs);

/**
 * A peer's Adj-RIB-In. An accepted route whose attributes are the received ones is its path in the
 * Loc-RIB and nothing else (no map slot of its own: at a million routes, one map less); only the
 * others (InEntry) are kept here, by inKey. An `indexed` one (local routes: few, listed on every
 * reconfiguration) keeps every entry here.
 */
class AdjRibIn {
  readonly kept = new Map<string, InValue>();
  /** Routes that are only their path in the Loc-RIB (not in `kept`). */
  plain = 0;
  accepted = 0;
  limitHit = false;
  /** Bumped by addPeer: a removal queued before a re-add must not forget the re-added peer. */
  generation = 0;
  constructor(
    public peer: RibPeer,
    readonly indexed = false,
  ) {}
}

function inKey(family: Family, prefix: string, pathId: number): string {
  const k = destKey(family, prefix);
  return pathId === 0 ? k : `${k}#${pathId}`;
}

/** Whole-peer operations over the entries selected when queued, chunked like UPDATE operations. */
type PeerOpKind = 'remove' | 'stale' | 'sweep';

interface Job {
  peerId: string;
  ops: readonly RibOp[];
  /** A whole-peer job: its kind and the Adj-RIB-In entries it covers (instead of ops). */
  peerOp?: PeerOpKind;
  entries?: readonly InValue[];
  /** …and the peer's columnar IPv4 routes, as addr * 64 + len (no objects for a million of them). */
  v4Keys?: readonly number[];
  at: number;
  /** Position inside the NLRI list of ops[at] (batched operations; a byte offset for packed ones). */
  sub: number;
  /** Operations that changed something (stale marks, sweeps). */
  count: number;
  run?: () => void;
  done: (count: number) => void;
}

const SLICE_CHECK = 512;

export type ChangeListener = (changes: readonly DestChange[]) => void;
export type NoticeListener = (n: RibNotice) => void;

export class Rib {
  readonly interner: AttrInterner;
  readonly loc: LocRib;
  private local: LocalIdentity;
  private readonly peers = new Map<string, AdjRibIn>();
  private readonly localIn = new AdjRibIn({ source: LOCAL_SOURCE }, true);
  private readonly queue: Job[] = [];
  private running = false;
  private readonly chunkSize: number;
  private readonly sliceMs: number;
  private readonly keepPre: boolean;
  private readonly changeListeners: ChangeListener[] = [];
  private readonly noticeListeners: NoticeListener[] = [];
  private pending: DestChange[] = [];
  private lastCheck:
    | { attrs: Readonly<PathAttributes>; source: PathSource; settings: ImportSettings | undefined; local: LocalIdentity; drop: ImportDrop | undefined }
    | undefined;

  constructor(opts: RibOptions) {
    this.local = opts.local;
    this.interner = opts.interner ?? new AttrInterner();
    this.loc = new LocRib(opts.maxPaths ?? 1, opts.columnar ?? true);
    this.chunkSize = opts.chunkSize ?? 20_000;
    this.sliceMs = opts.sliceMs ?? 10;
    this.keepPre = opts.keepPrePolicy ?? true;
  }

  setLocal(local: LocalIdentity): void {
    this.local = local;
  }

  onChanges(l: ChangeListener): void {
    this.changeListeners.push(l);
  }

  onNotice(l: NoticeListener): void {
    this.noticeListeners.push(l);
  }

  addPeer(peer: RibPeer): void {
    const existing = this.peers.get(peer.source.id);
    if (existing) {
      existing.peer = peer;
      existing.generation++;
    } else this.peers.set(peer.source.id, new AdjRibIn(peer));
  }

  hasPeer(id: string): boolean {
    return this.peers.has(id);
  }

  /** Counters for status: received (pre-policy) and accepted (post-policy). */
  counts(peerId: string): { received: number; accepted: number } {
    const a = this.peers.get(peerId);
    return a ? { received: a.kept.size + a.plain, accepted: a.accepted } : { received: 0, accepted: 0 };
  }

  /** Adj-RIB-In of a peer: received attributes and the accepted path, per prefix. */
  *adjRibIn(peerId: string): IterableIterator<{ family: Family; prefix: string; pathId: number; pre?: Readonly<PathAttributes>; accepted: boolean }> {
    const a = this.peers.get(peerId);
    if (!a) return;
    for (const e of this.entriesOf(a)) yield { family: e.family, prefix: e.prefix, pathId: e.pathId, pre: preOf(e), accepted: postOf(e) !== undefined };
  }

  /** Queue UPDATE operations from a peer; resolves once they are in the Loc-RIB. */
  submit(peerId: string, ops: readonly RibOp[]): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push({ peerId, ops, at: 0, sub: 0, count: 0, done: () => resolve() });
      this.kick();
    });
  }

  /** Queue a whole-peer operation over the entries selected now (in chunks, like updates). */
  private peerJob(peerId: string, kind: PeerOpKind, families: readonly Family[] | undefined, then?: () => void): Promise<number> {
    return new Promise((resolve) => {
      const a = this.peers.get(peerId);
      const entries: InValue[] = [];
      if (a) for (const e of this.entriesOf(a, true)) if (!families || families.includes(e.family)) entries.push(e);
      const v4Keys = a && a.plain > 0 && (!families || families.includes('ipv4-unicast')) ? this.loc.v4KeysOf(a.peer.source.id) : [];
      this.queue.push({
        peerId,
        ops: [],
        peerOp: kind,
        entries,
        v4Keys,
        at: 0,
        sub: 0,
        count: 0,
        done: (n) => {
          then?.();
          resolve(n);
        },
      });
      this.kick();
    });
  }

  /** Resolves when every queued operation has been processed. */
  drain(): Promise<void> {
    return this.submit('', []);
  }

  /** Originate (or replace) a local route. */
  originate(family: Family, prefix: string, attrs: PathAttributes = {}, interfaceName?: string): Promise<void> {
    const source: PathSource = interfaceName ? { ...LOCAL_SOURCE, interfaceName, asn: this.local.asn } : { ...LOCAL_SOURCE, asn: this.local.asn };
    const a: PathAttributes = { origin: 0, asPath: [], ...attrs };
    return this.runExclusive(() => {
      this.applyPath(this.localIn, family, prefix, 0, a, source);
    });
  }

  withdrawLocal(family: Family, prefix: string): Promise<void> {
    return this.runExclusive(() => this.applyWithdraw(this.localIn, family, prefix, 0));
  }

  /** Locally originated prefixes currently in the RIB. */
  originated(): Array<{ family: Family; prefix: string }> {
    return [...this.entriesOf(this.localIn)].map((e) => ({ family: e.family, prefix: e.prefix }));
  }

  /** Remove a peer and all its paths (session down without graceful restart, or peer deleted). */
  removePeer(peerId: string, forget = true): Promise<void> {
    const generation = this.peers.get(peerId)?.generation;
    return this.peerJob(peerId, 'remove', undefined, () => {
      const a = this.peers.get(peerId);
      if (!a || a.generation !== generation) return;
      a.limitHit = false;
      if (forget) this.peers.delete(peerId);
    }).then(() => undefined);
  }

  /** Graceful restart helper: mark every path of the peer (in `families`, default all) stale. */
  markStale(peerId: string, families?: readonly Family[]): Promise<number> {
    return this.peerJob(peerId, 'stale', families);
  }

  /** Remove the peer's paths still stale (EoR received or restart timer expired). */
  sweepStale(peerId: string, families?: readonly Family[]): Promise<number> {
    return this.peerJob(peerId, 'sweep', families);
  }

  /** Re-run the import pipeline over the kept pre-policy routes (after a policy change). */
  reimport(peerId: string): Promise<void> {
    return this.runExclusive(() => {
      const a = this.peers.get(peerId);
      if (!a) return;
      for (const e of [...this.entriesOf(a)]) this.applyPath(a, e.family, e.prefix, e.pathId, preOf(e), a.peer.source);
    });
  }

  /** Run `fn` in queue order (after already queued work); its changes are flushed after it. */
  private runExclusive<T>(fn: () => T): Promise<T> {
    return new Promise((resolve) => {
      this.queue.push({ peerId: '', ops: [], at: 0, sub: 0, count: 0, run: () => resolve(fn()), done: () => undefined });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => this.step());
  }

  private step(): void {
    const until = performance.now() + this.sliceMs;
    let budget = this.chunkSize;
    while (budget > 0 && this.queue.length > 0) {
      if (performance.now() > until) break;
      const job = this.queue[0]!;
      if (job.run) {
        budget--;
        this.queue.shift();
        job.run();
        this.flush();
        continue;
      }
      const peerIn = job.peerId ? this.peers.get(job.peerId) : undefined;
      // At most SLICE_CHECK prefixes between two looks at the clock.
      const b = Math.min(budget, SLICE_CHECK);
      budget -= b - (job.entries ? this.runPeerOp(job, peerIn, b) : this.runOps(job, peerIn, b));
      if (job.at >= (job.entries ? job.entries.length + (job.v4Keys?.length ?? 0) : job.ops.length)) {
        this.queue.shift();
        this.flush();
        job.done(job.count);
      }
    }
    this.flush();
    if (this.queue.length > 0) setImmediate(() => this.step());
    else this.running = false;
  }

  /** UPDATE operations of a job, up to `budget` prefixes; returns the budget left. */
  private runOps(job: Job, peerIn: AdjRibIn | undefined, budget: number): number {
    const ops = job.ops;
    while (job.at < ops.length && budget > 0) {
      const op = ops[job.at]!;
      if (op.kind === 'announce-v4' || op.kind === 'withdraw-v4') {
        const p = op.nlri;
        let n = 0;
        if (peerIn) {
          if (op.kind === 'announce-v4') {
            const attrs = op.attrs;
            const source = peerIn.peer.source;
            job.sub = forEachV4(p, job.sub, budget, (addr, len, pathId) => {
              n++;
              this.applyV4(peerIn, addr, len, pathId, attrs, source);
            });
          } else {
            job.sub = forEachV4(p, job.sub, budget, (addr, len, pathId) => {
              n++;
              this.withdrawV4(peerIn, addr, len, pathId);
            });
          }
        } else job.sub = forEachV4(p, job.sub, budget, () => n++);
        budget -= n;
        if (job.sub < p.bytes.length) break;
        job.sub = 0;
        job.at++;
        continue;
      }
      if (op.kind === 'announce-nlri' || op.kind === 'withdraw-nlri') {
        const nlri = op.nlri;
        const end = Math.min(nlri.length, job.sub + budget);
        budget -= end - job.sub;
        if (peerIn) {
          if (op.kind === 'announce-nlri') {
            const source = peerIn.peer.source;
            for (let i = job.sub; i < end; i++) {
              const n = nlri[i]!;
              this.applyPath(peerIn, op.family, n.prefix, n.pathId ?? 0, op.attrs, source);
            }
          } else {
            for (let i = job.sub; i < end; i++) {
              const n = nlri[i]!;
              this.applyWithdraw(peerIn, op.family, n.prefix, n.pathId ?? 0);
            }
          }
        }
        job.sub = end;
        if (end < nlri.length) break;
        job.sub = 0;
        job.at++;
        continue;
      }
      job.at++;
      budget--;
      if (!peerIn) continue;
      if (op.kind === 'announce') this.applyPath(peerIn, op.family, op.prefix, op.pathId ?? 0, op.attrs, peerIn.peer.source);
      else this.applyWithdraw(peerIn, op.family, op.prefix, op.pathId ?? 0);
    }
    return budget;
  }

  /** Whole-peer operations (remove / stale / sweep) of a job, up to `budget` entries. */
  private runPeerOp(job: Job, peerIn: AdjRibIn | undefined, budget: number): number {
    const entries = job.entries!;
    const keys = job.v4Keys ?? [];
    const total = entries.length + keys.length;
    // The entries first, then the columnar routes; each may have been replaced or withdrawn since
    // the job was queued: act on the current one.
    while (job.at < total && budget > 0) {
      const i = job.at++;
      budget--;
      if (!peerIn) continue;
      if (i < entries.length) {
        const e = entries[i]!;
        if (job.peerOp === 'remove') this.applyWithdraw(peerIn, e.family, e.prefix, e.pathId);
        else if (job.peerOp === 'stale' ? this.applyStale(peerIn, e.family, e.prefix, e.pathId) : this.applySweep(peerIn, e.family, e.prefix, e.pathId)) job.count++;
      } else {
        const key = keys[i - entries.length]!;
        const addr = Math.floor(key / 64);
        const len = key % 64;
        if (job.peerOp === 'remove') this.withdrawV4(peerIn, addr, len, 0);
        else if (job.peerOp === 'stale' ? this.staleV4(peerIn, addr, len) : this.sweepV4(peerIn, addr, len)) job.count++;
      }
    }
    return budget;
  }

  /** Withdraw a route if it is (still) stale. */
  private applySweep(a: AdjRibIn, family: Family, prefix: string, pathId: number): boolean {
    const cur = this.entry(a, inKey(family, prefix, pathId), this.loc.get(family, prefix), pathId);
    if (!cur || !postOf(cur)?.stale) return false;
    this.applyWithdraw(a, family, prefix, pathId);
    return true;
  }

  /** applyStale for a columnar route (the stale flag is a column: no object made). */
  private staleV4(a: AdjRibIn, addr: number, len: number): boolean {
    const loc = this.loc;
    if (loc.hasV4Object(addr, len)) return this.applyStale(a, 'ipv4-unicast', formatV4(addr, len), 0);
    const slot = loc.findV4(addr, len);
    if (slot < 0 || loc.v4SourceAt(slot).id !== a.peer.source.id || loc.v4StaleAt(slot)) return false;
    this.pending.push(loc.markStaleV4(slot, addr, len));
    return true;
  }

  /** applySweep for a columnar route. */
  private sweepV4(a: AdjRibIn, addr: number, len: number): boolean {
    const loc = this.loc;
    if (loc.hasV4Object(addr, len)) return this.applySweep(a, 'ipv4-unicast', formatV4(addr, len), 0);
    const slot = loc.findV4(addr, len);
    if (slot < 0 || loc.v4SourceAt(slot).id !== a.peer.source.id || !loc.v4StaleAt(slot)) return false;
    this.withdrawV4(a, addr, len, 0);
    return true;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    for (const l of this.changeListeners) l(batch);
  }

  private notice(n: RibNotice): void {
    for (const l of this.noticeListeners) l(n);
  }

  /**
   * Every Adj-RIB-In entry of a peer: its InEntries, then its other paths found in the Loc-RIB
   * (`objectsOnly`: not those in the columnar table; see LocRib.v4KeysOf).
   */
  private *entriesOf(a: AdjRibIn, objectsOnly = false): IterableIterator<InValue> {
    yield* a.kept.values();
    if (a.plain === 0) return;
    const id = a.peer.source.id;
    for (const d of objectsOnly ? this.loc.objectDestinations() : this.loc.destinations()) {
      for (const p of d.values()) {
        if (p.source.id !== id) continue;
        // An InEntry's accepted path is in the Loc-RIB too; it was listed above.
        if (a.kept.size === 0 || !a.kept.has(inKey(p.family, p.prefix, p.pathId))) yield p;
      }
    }
  }

  /** The Adj-RIB-In entry of `a` for a route (`d`: its Loc-RIB destination, if any). */
  private entry(a: AdjRibIn, k: string, d: Destination | undefined, pathId: number): InValue | undefined {
    if (a.kept.size > 0) {
      const e = a.kept.get(k);
      if (e) return e;
    }
    return d?.get(pathKey(a.peer.source.id, pathId));
  }

  /** Replace entry `old` by `next` in the Adj-RIB-In bookkeeping (the Loc-RIB is updated by the caller). */
  private store(a: AdjRibIn, k: string, old: InValue | undefined, next: InValue | undefined): void {
    const keepNext = next !== undefined && (a.indexed || next instanceof InEntry);
    const keptOld = old !== undefined && (a.indexed || old instanceof InEntry);
    if (keepNext) a.kept.set(k, next);
    else if (keptOld) a.kept.delete(k);
    if (next !== undefined && !keepNext) a.plain++;
    if (old !== undefined && !keptOld) a.plain--;
  }

  private applyPath(a: AdjRibIn, family: Family, prefix: string, pathId: number, raw: PathAttributes, source: PathSource): void {
    const k = inKey(family, prefix, pathId);
    const d = this.loc.get(family, prefix);
    const old = this.entry(a, k, d, pathId);
    const pre = this.interner.intern(raw);
    const drop = source.type === 'local' ? undefined : this.importCheck(a, source, pre);
    let accepted = drop === undefined;
    if (drop) this.notice({ kind: 'import-drop', peerId: source.id, prefix, reason: drop });
    let postAttrs: Readonly<PathAttributes> = pre;
    if (accepted && source.type === 'ebgp' && pre.localPref !== DEFAULT_LOCAL_PREF) {
      // LOCAL_PREF from an eBGP peer is meaningless (RFC 4271 §5.1.5): set ours.
      postAttrs = this.interner.intern({ ...pre, localPref: DEFAULT_LOCAL_PREF });
    } else if (accepted) {
      postAttrs = this.interner.intern(pre);
    }
    if (accepted && a.peer.accept) {
      const r = a.peer.accept({ family, prefix, source, attrs: postAttrs });
      if (r === false) accepted = false;
      else if (r !== true && r !== postAttrs) {
        // Policy operations changed the route: keep the changed attributes instead.
        const changed = this.interner.intern(r);
        this.interner.release(postAttrs);
        postAttrs = changed;
      }
    }
    // References now: `pre` one, `postAttrs` one more when accepted (even when the same object).
    const oldPost = old ? postOf(old) : undefined;
    if (!accepted) {
      if (postAttrs !== pre || drop === undefined) this.interner.release(postAttrs);
      if (old) this.releaseEntry(old);
      if (oldPost) this.dropPost(a, oldPost);
      if (this.keepPre) this.store(a, k, old, new InEntry(family, prefix, pathId, pre, undefined));
      else {
        // Without soft reconfiguration, rejected routes are not kept at all.
        this.interner.release(pre);
        this.store(a, k, old, undefined);
      }
      return;
    }
    const path: Path = { family, prefix, pathId, source, attrs: postAttrs, stale: false };
    let next: InValue = path;
    if (this.keepPre && postAttrs !== pre) next = new InEntry(family, prefix, pathId, pre, path);
    // The path's attributes stand for the received ones too: one reference is enough.
    else this.interner.release(pre);
    this.store(a, k, old, next);
    if (old) this.releaseEntry(old);
    if (!oldPost) a.accepted++;
    this.pending.push(this.loc.upsertIn(d, path, next === path && !a.indexed));
    const limit = a.peer.maxPrefixes;
    if (limit !== undefined && limit > 0 && a.accepted > limit && !a.limitHit) {
      a.limitHit = true;
      this.notice({ kind: 'max-prefix', peerId: source.id, limit, count: a.accepted });
    }
  }

  /**
   * applyPath for an IPv4 prefix read as numbers. The common route — path id 0 from a peer whose
   * Adj-RIB-In keeps nothing else, accepted with its received attributes, no other path for the
   * prefix — goes straight to the columnar table without a prefix string or path object; anything
   * else takes applyPath with the prefix text.
   */
  private applyV4(a: AdjRibIn, addr: number, len: number, pathId: number, raw: PathAttributes, source: PathSource): void {
    const loc = this.loc;
    if (pathId !== 0 || a.indexed || a.kept.size > 0 || a.peer.accept || loc.hasV4Object(addr, len)) {
      this.applyPath(a, 'ipv4-unicast', formatV4(addr, len), pathId, raw, source);
      return;
    }
    const slot = loc.findV4(addr, len);
    // A second source for the prefix: the destination becomes an object (applyPath promotes it).
    if (slot >= 0 && loc.v4SourceAt(slot).id !== source.id) {
      this.applyPath(a, 'ipv4-unicast', formatV4(addr, len), pathId, raw, source);
      return;
    }
    const attrs = this.interner.intern(raw);
    const old = slot >= 0 ? loc.v4AttrsAt(slot) : undefined;
    const plain = (source.type === 'local' || this.importCheck(a, source, attrs) === undefined) && (source.type !== 'ebgp' || attrs.localPref === DEFAULT_LOCAL_PREF);
    const c = plain ? (slot >= 0 ? loc.replaceV4(slot, addr, len, attrs, source) : loc.insertV4(addr, len, attrs, source)) : undefined;
    if (!c) {
      // Dropped, or attributes to change: applyPath does it (and takes its own reference).
      this.interner.release(attrs);
      this.applyPath(a, 'ipv4-unicast', formatV4(addr, len), pathId, raw, source);
      return;
    }
    this.pending.push(c);
    if (old) {
      // replaceV4 handed back the old path's reference.
      this.interner.release(old);
      return;
    }
    a.plain++;
    a.accepted++;
    const limit = a.peer.maxPrefixes;
    if (limit !== undefined && limit > 0 && a.accepted > limit && !a.limitHit) {
      a.limitHit = true;
      this.notice({ kind: 'max-prefix', peerId: source.id, limit, count: a.accepted });
    }
  }

  /** applyWithdraw for an IPv4 prefix read as numbers (see applyV4). */
  private withdrawV4(a: AdjRibIn, addr: number, len: number, pathId: number): void {
    const loc = this.loc;
    if (pathId !== 0 || a.indexed || a.kept.size > 0 || loc.hasV4Object(addr, len)) {
      this.applyWithdraw(a, 'ipv4-unicast', formatV4(addr, len), pathId);
      return;
    }
    const slot = loc.findV4(addr, len);
    if (slot < 0 || loc.v4SourceAt(slot).id !== a.peer.source.id) return;
    const attrs = loc.v4AttrsAt(slot);
    a.plain--;
    a.accepted--;
    this.pending.push(loc.removeV4(slot, addr, len));
    this.interner.release(attrs);
  }

  /** importCheck, remembered for the last attribute set (every prefix of an UPDATE has the same). */
  private importCheck(a: AdjRibIn, source: PathSource, attrs: Readonly<PathAttributes>): ImportDrop | undefined {
    const c = this.lastCheck;
    if (c && c.attrs === attrs && c.source === source && c.settings === a.peer.import && c.local === this.local) return c.drop;
    const drop = importCheck(source, attrs, this.local, a.peer.import);
    this.lastCheck = { attrs, source, settings: a.peer.import, local: this.local, drop };
    return drop;
  }

  /** Release the attribute references an entry holds (it is being replaced or removed). */
  private releaseEntry(e: InValue): void {
    if (e instanceof InEntry) {
      this.interner.release(e.pre);
      if (e.post) this.interner.release(e.post.attrs);
    } else this.interner.release(e.attrs);
  }

  private applyStale(a: AdjRibIn, family: Family, prefix: string, pathId: number): boolean {
    // A stale path is a flag on its object: a columnar route becomes one first.
    const d = this.loc.getLive(family, prefix);
    const e = this.entry(a, inKey(family, prefix, pathId), d, pathId);
    const p = e ? postOf(e) : undefined;
    if (!p || p.stale) return false;
    p.stale = true;
    if (d) this.pending.push(this.loc.refresh(d, p));
    return true;
  }

  /** Take an accepted path out of the Loc-RIB (its attribute reference is released by the caller). */
  private dropPost(a: AdjRibIn, p: Path): void {
    a.accepted--;
    const c = this.loc.remove(p.family, p.prefix, p.source.id, p.pathId);
    if (c) this.pending.push(c);
  }

  private applyWithdraw(a: AdjRibIn, family: Family, prefix: string, pathId: number): void {
    const k = inKey(family, prefix, pathId);
    const e = this.entry(a, k, this.loc.get(family, prefix), pathId);
    if (!e) return;
    this.store(a, k, e, undefined);
    const p = postOf(e);
    if (p) this.dropPost(a, p);
    this.releaseEntry(e);
  }
}
