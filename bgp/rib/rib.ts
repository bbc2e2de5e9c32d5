/**
 * The RIB engine: Adj-RIB-In per peer (pre- and post-policy), the Loc-RIB, and the import pipeline
 *
 *   peer UPDATE ops ──► queue ──(chunks, yields to the event loop)──►
 *     Adj-RIB-In pre ──► importCheck (loops) ──► import policy ──► intern ──► Adj-RIB-In post
 *       ──► Loc-RIB (decision process) ──► DestChange batches ──► listeners (Adj-RIB-Out, FIB)
 *
 * Work is processed `chunkSize` operations at a time; between chunks the engine yields with
 * setImmediate so keepalives and hold timers are never starved by a large table.
 */
import type { Family, PathAttributes } from '../types.js';
import { AttrInterner } from './intern.js';
import { LocRib, destKey, type DestChange } from './loc-rib.js';
import { LOCAL_SOURCE, DEFAULT_LOCAL_PREF, type Path, type PathSource } from './path.js';
import { importCheck, type ImportDrop, type ImportSettings, type LocalIdentity } from './rules.js';

export type RibOp =
  | { kind: 'announce'; family: Family; prefix: string; pathId?: number; attrs: PathAttributes }
  | { kind: 'withdraw'; family: Family; prefix: string; pathId?: number };

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
  /** Operations per event-loop turn. */
  chunkSize?: number;
  /** Keep the received attributes of rejected routes (soft reconfiguration inbound). Default true. */
  keepPrePolicy?: boolean;
  interner?: AttrInterner;
}

interface InEntry {
  family: Family;
  prefix: string;
  pathId: number;
  /** Pre-policy attributes (interned), when kept. */
  pre: Readonly<PathAttributes> | undefined;
  /** Post-policy path, when accepted. */
  post: Path | undefined;
}

class AdjRibIn {
  readonly entries = new Map<string, InEntry>();
  accepted = 0;
  limitHit = false;
  /** Bumped by addPeer: a removal queued before a re-add must not forget the re-added peer. */
  generation = 0;
  constructor(public peer: RibPeer) {}
}

function inKey(family: Family, prefix: string, pathId: number): string {
  const k = destKey(family, prefix);
  return pathId === 0 ? k : `${k}#${pathId}`;
}

/** Whole-peer operations, queued like UPDATE operations so they are chunked too. */
type PeerOp =
  | { kind: 'remove'; family: Family; prefix: string; pathId: number }
  | { kind: 'stale'; family: Family; prefix: string; pathId: number }
  | { kind: 'sweep'; family: Family; prefix: string; pathId: number };

interface Job {
  peerId: string;
  ops: ReadonlyArray<RibOp | PeerOp>;
  at: number;
  /** Operations that changed something (stale marks, sweeps). */
  count: number;
  run?: () => void;
  done: (count: number) => void;
}

export type ChangeListener = (changes: readonly DestChange[]) => void;
export type NoticeListener = (n: RibNotice) => void;

export class Rib {
  readonly interner: AttrInterner;
  readonly loc: LocRib;
  private local: LocalIdentity;
  private readonly peers = new Map<string, AdjRibIn>();
  private readonly localIn = new AdjRibIn({ source: LOCAL_SOURCE });
  private readonly queue: Job[] = [];
  private running = false;
  private readonly chunkSize: number;
  private readonly keepPre: boolean;
  private readonly changeListeners: ChangeListener[] = [];
  private readonly noticeListeners: NoticeListener[] = [];
  private pending: DestChange[] = [];

  constructor(opts: RibOptions) {
    this.local = opts.local;
    this.interner = opts.interner ?? new AttrInterner();
    this.loc = new LocRib(opts.maxPaths ?? 1);
    this.chunkSize = opts.chunkSize ?? 2000;
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
    return a ? { received: a.entries.size, accepted: a.accepted } : { received: 0, accepted: 0 };
  }

  /** Adj-RIB-In of a peer: received attributes and the accepted path, per prefix. */
  *adjRibIn(peerId: string): IterableIterator<{ family: Family; prefix: string; pathId: number; pre?: Readonly<PathAttributes>; accepted: boolean }> {
    const a = this.peers.get(peerId);
    if (!a) return;
    for (const e of a.entries.values()) {
      const item: { family: Family; prefix: string; pathId: number; pre?: Readonly<PathAttributes>; accepted: boolean } = {
        family: e.family,
        prefix: e.prefix,
        pathId: e.pathId,
        accepted: e.post !== undefined,
      };
      const pre = e.pre ?? e.post?.attrs;
      if (pre) item.pre = pre;
      yield item;
    }
  }

  /** Queue UPDATE operations from a peer; resolves once they are in the Loc-RIB. */
  submit(peerId: string, ops: readonly RibOp[]): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push({ peerId, ops, at: 0, count: 0, done: () => resolve() });
      this.kick();
    });
  }

  /** Queue a whole-peer operation over the entries selected now (in chunks, like updates). */
  private peerJob(peerId: string, kind: PeerOp['kind'], families: readonly Family[] | undefined, then?: () => void): Promise<number> {
    return new Promise((resolve) => {
      const a = this.peers.get(peerId);
      const ops: PeerOp[] = [];
      if (a) for (const e of a.entries.values()) if (!families || families.includes(e.family)) ops.push({ kind, family: e.family, prefix: e.prefix, pathId: e.pathId });
      this.queue.push({
        peerId,
        ops,
        at: 0,
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
    return [...this.localIn.entries.values()].map((e) => ({ family: e.family, prefix: e.prefix }));
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
      for (const e of [...a.entries.values()]) {
        const pre = e.pre ?? e.post?.attrs;
        if (pre) this.applyPath(a, e.family, e.prefix, e.pathId, pre, a.peer.source);
      }
    });
  }

  /** Run `fn` in queue order (after already queued work); its changes are flushed after it. */
  private runExclusive<T>(fn: () => T): Promise<T> {
    return new Promise((resolve) => {
      this.queue.push({ peerId: '', ops: [], at: 0, count: 0, run: () => resolve(fn()), done: () => undefined });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => this.step());
  }

  private step(): void {
    let budget = this.chunkSize;
    while (budget > 0 && this.queue.length > 0) {
      const job = this.queue[0]!;
      if (job.run) {
        budget--;
        this.queue.shift();
        job.run();
        this.flush();
        continue;
      }
      const peerIn = job.peerId ? this.peers.get(job.peerId) : undefined;
      while (job.at < job.ops.length && budget > 0) {
        const op = job.ops[job.at++]!;
        budget--;
        if (!peerIn) continue;
        const pathId = op.pathId ?? 0;
        switch (op.kind) {
          case 'announce':
            this.applyPath(peerIn, op.family, op.prefix, pathId, op.attrs, peerIn.peer.source);
            break;
          case 'withdraw':
          case 'remove':
            this.applyWithdraw(peerIn, op.family, op.prefix, pathId);
            break;
          case 'stale':
            if (this.applyStale(peerIn, op.family, op.prefix, pathId)) job.count++;
            break;
          case 'sweep':
            if (peerIn.entries.get(inKey(op.family, op.prefix, pathId))?.post?.stale) {
              this.applyWithdraw(peerIn, op.family, op.prefix, pathId);
              job.count++;
            }
            break;
        }
      }
      if (job.at >= job.ops.length) {
        this.queue.shift();
        this.flush();
        job.done(job.count);
      }
    }
    this.flush();
    if (this.queue.length > 0) setImmediate(() => this.step());
    else this.running = false;
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

  private applyPath(a: AdjRibIn, family: Family, prefix: string, pathId: number, raw: PathAttributes, source: PathSource): void {
    const k = inKey(family, prefix, pathId);
    let e = a.entries.get(k);
    if (!e) {
      e = { family, prefix, pathId, pre: undefined, post: undefined };
      a.entries.set(k, e);
    }
    const pre = this.interner.intern(raw);
    const drop = source.type === 'local' ? undefined : importCheck(source, pre, this.local, a.peer.import);
    let accepted = drop === undefined;
    if (drop) this.notice({ kind: 'import-drop', peerId: source.id, prefix, reason: drop });
    let postAttrs: Readonly<PathAttributes> = pre;
    if (accepted && source.type === 'ebgp') {
      // LOCAL_PREF from an eBGP peer is meaningless (RFC 4271 §5.1.5): set ours.
      if (pre.localPref !== DEFAULT_LOCAL_PREF) postAttrs = this.interner.intern({ ...pre, localPref: DEFAULT_LOCAL_PREF });
      else postAttrs = this.interner.intern(pre);
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
    // Release the previous values.
    if (e.pre) this.interner.release(e.pre);
    e.pre = undefined;
    if (this.keepPre || !accepted) e.pre = pre;
    else this.interner.release(pre);
    if (!accepted) {
      if (postAttrs !== pre || drop === undefined) this.interner.release(postAttrs);
      if (e.post) this.dropPost(a, e);
      if (!this.keepPre) {
        // Without soft reconfiguration, rejected routes are not kept at all.
        if (e.pre) this.interner.release(e.pre);
        a.entries.delete(k);
      }
      return;
    }
    const path: Path = { family, prefix, pathId, source, attrs: postAttrs, stale: false };
    const old = e.post;
    e.post = path;
    if (!old) a.accepted++;
    else this.interner.release(old.attrs);
    this.pending.push(this.loc.upsert(path));
    const limit = a.peer.maxPrefixes;
    if (limit !== undefined && limit > 0 && a.accepted > limit && !a.limitHit) {
      a.limitHit = true;
      this.notice({ kind: 'max-prefix', peerId: source.id, limit, count: a.accepted });
    }
  }

  private applyStale(a: AdjRibIn, family: Family, prefix: string, pathId: number): boolean {
    const p = a.entries.get(inKey(family, prefix, pathId))?.post;
    if (!p || p.stale) return false;
    p.stale = true;
    const d = this.loc.get(p.family, p.prefix);
    if (d) this.pending.push(this.loc.refresh(d, p));
    return true;
  }

  private dropPost(a: AdjRibIn, e: InEntry): void {
    const p = e.post;
    if (!p) return;
    e.post = undefined;
    a.accepted--;
    const c = this.loc.remove(p.family, p.prefix, p.source.id, p.pathId);
    if (c) this.pending.push(c);
    this.interner.release(p.attrs);
  }

  private applyWithdraw(a: AdjRibIn, family: Family, prefix: string, pathId: number): void {
    const k = inKey(family, prefix, pathId);
    const e = a.entries.get(k);
    if (!e) return;
    a.entries.delete(k);
    if (e.pre) this.interner.release(e.pre);
    this.dropPost(a, e);
  }
}
