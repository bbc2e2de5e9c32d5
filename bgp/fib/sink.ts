/**
 * Kernel installation of best paths, through a pluggable sink.
 *
 *   Loc-RIB DestChange ─► FibInstaller (pending changes, pure) ─► flush() ─► FibSink (I/O)
 *
 * The sink decides *how* a route is installed (plain next hop, tunnel device, CrossSubnet…), so
 * felix can own those decisions; the speaker only says which prefixes go where. Setters never do
 * I/O; flush() applies the difference and keeps failed prefixes for the next flush.
 *
 * Memory (bench/results/bgpfib.md): the installer keeps no copy of the Loc-RIB. It holds only the
 * changes not yet applied — one queue slot each, pointing at the best path (or ECMP set) the RIB
 * keeps anyway — and builds FibRoute objects for one batch at a time, synchronously, so none of
 * them outlives the call into the sink. The kernel is the record of what is installed:
 * withdrawAll() asks the sink (list()).
 */
import { errorMessage } from '../../lib/errors.js';
import type { Family, PathAttributes } from '../types.js';
import type { DestChange, Destination } from '../rib/loc-rib.js';
import type { Path } from '../rib/path.js';

export interface FibNextHop {
  gateway: string;
  /** The peer the path came from (felix may choose a tunnel by it). */
  peer: string;
}

export interface FibRoute {
  family: Family;
  prefix: string;
  /** ECMP: one entry per next hop (a multipath route when more than one). */
  nextHops: FibNextHop[];
  /** Attributes of the best path, for sinks that decide by communities etc. */
  attrs: Readonly<PathAttributes>;
  /** Kernel route metric set by a BGPFilter setPriority operation (undefined: the sink's default). */
  priority?: number;
}

export interface FibSink {
  /** Install or replace the route (idempotent). */
  replace(route: FibRoute): Promise<void> | void;
  /** Remove our route for the prefix (absent is not an error). */
  delete(family: Family, prefix: string): Promise<void> | void;
  /**
   * Routes of ours already installed (kept from a previous run); used to clean up after restart
   * and by FibInstaller.withdrawAll(). Without it the installer remembers the prefixes it
   * installed itself (one set slot per route).
   */
  list?(): Promise<Array<{ family: Family; prefix: string }>> | Array<{ family: Family; prefix: string }>;
  /**
   * Optional: apply many operations at once (e.g. pipelined netlink). Resolves to one entry per
   * operation, index-aligned: undefined = done, else the error. Without it flush() awaits
   * replace()/delete() one route at a time.
   */
  applyBatch?(ops: readonly FibOp[]): Promise<Array<unknown>>;
}

export type FibOp = { kind: 'replace'; route: FibRoute } | { kind: 'delete'; family: Family; prefix: string };

/** Routes per applyBatch() call: bounds the memory of one call (the only FibRoute objects alive). */
const FIB_BATCH = 4096;

/** IPv4 and IPv6 prefix texts never coincide, so the prefix alone keys a route of either family. */
export function familyOfFibPrefix(prefix: string): Family {
  return prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast';
}

/** An in-memory sink for tests and `fib.install: false`. */
export class MemoryFibSink implements FibSink {
  readonly routes = new Map<string, FibRoute>();
  readonly log: string[] = [];
  failNext = 0;

  replace(route: FibRoute): void {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error(`injected failure for ${route.prefix}`);
    }
    this.routes.set(route.prefix, route);
    this.log.push(`replace ${route.prefix} via ${route.nextHops.map((n) => n.gateway).join(',')}`);
  }

  delete(_family: Family, prefix: string): void {
    this.routes.delete(prefix);
    this.log.push(`delete ${prefix}`);
  }

  list(): Array<{ family: Family; prefix: string }> {
    return [...this.routes.values()].map((r) => ({ family: r.family, prefix: r.prefix }));
  }
}

export interface FibInstallerOptions {
  /** Also install locally originated prefixes (normally not: they are ours already). */
  installLocal?: boolean;
  /**
   * The Loc-RIB's current destination of a columnar IPv4 prefix (LocRib.destinationV4). Given, a
   * columnar change is queued as its (addr, len) — 8 B in a typed array, no objects kept — and
   * looked up when its batch is built: while the kernel lags a table load by seconds, the queue
   * would otherwise keep a path object and prefix text alive per route (~120 MB at 1M).
   */
  lookupV4?: (addr: number, len: number) => Destination;
  onError?: (prefix: string, err: unknown) => void;
}

/**
 * A pending change: the best path (one next hop), the ECMP set, or the prefix text to remove.
 * Paths are the RIB's own objects (immutable attributes) and carry their prefix, so a queued
 * change costs one array slot (8 B) and no allocation.
 */
type Entry = Path | readonly Path[] | string;

const prefixOf = (e: Entry): string => (typeof e === 'string' ? e : 'prefix' in e ? e.prefix : (e[0] as Path).prefix);

/** Entries per queue chunk: small arrays in the regular heap, never copied to grow. */
const CHUNK = 4096;

/**
 * A FIFO of entries in fixed-size chunks. One growing array would be copied at every growth
 * (~3× its final size in large-object garbage at a million entries) and hold its full
 * length until the last entry is taken; a consumed chunk is garbage at once.
 */
class Queue {
  private readonly chunks: Entry[][] = [[]];
  private head = 0;
  private count = 0;
  get size(): number {
    return this.count;
  }
  push(e: Entry): void {
    let tail = this.chunks[this.chunks.length - 1] as Entry[];
    const n = tail.length;
    // Consecutive changes of one prefix (common: several per UPDATE burst) keep only the last.
    if (n > (this.chunks.length === 1 ? this.head : 0) && prefixOf(tail[n - 1] as Entry) === prefixOf(e)) {
      tail[n - 1] = e;
      return;
    }
    if (n === CHUNK) {
      tail = [];
      this.chunks.push(tail);
    }
    tail.push(e);
    this.count++;
  }
  /** Puts entries before everything queued (they are older than all of it). */
  prepend(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.chunks[0] as Entry[];
    if (this.head > 0) this.chunks[0] = first.slice(this.head);
    this.head = 0;
    this.chunks.unshift(entries);
    this.count += entries.length;
  }
  shift(): Entry | undefined {
    if (this.count === 0) return undefined;
    let first = this.chunks[0] as Entry[];
    while (this.head === first.length) {
      this.chunks.shift();
      this.head = 0;
      first = this.chunks[0] as Entry[];
    }
    const e = first[this.head] as Entry;
    first[this.head++] = ''; // drop the reference
    this.count--;
    if (this.count === 0) this.clear();
    return e;
  }
  clear(): void {
    this.chunks.length = 0;
    this.chunks.push([]);
    this.head = 0;
    this.count = 0;
  }
}

/**
 * A FIFO of columnar IPv4 prefixes as (addr, len) pairs in fixed-size Int32Array chunks. Entries
 * name a prefix, not a state: the state installed is the Loc-RIB's when the entry is taken.
 */
class V4Queue {
  private readonly chunks: Int32Array[] = [];
  private tailLen = 0;
  private head = 0;
  private count = 0;
  get size(): number {
    return this.count;
  }
  push(addr: number, len: number): void {
    let tail = this.chunks[this.chunks.length - 1];
    const a = addr | 0;
    // The same prefix again right after itself: one lookup later covers both.
    if (tail && this.tailLen > (this.chunks.length === 1 ? this.head : 0) && tail[this.tailLen - 2] === a && tail[this.tailLen - 1] === len) return;
    if (!tail || this.tailLen === tail.length) {
      tail = new Int32Array(CHUNK * 2);
      this.chunks.push(tail);
      this.tailLen = 0;
    }
    tail[this.tailLen++] = a;
    tail[this.tailLen++] = len;
    this.count++;
  }
  /** The oldest entry as addr * 64 + len (exact: < 2^38), removed; -1 when empty. */
  shift(): number {
    if (this.count === 0) return -1;
    let first = this.chunks[0] as Int32Array;
    if (this.head === first.length) {
      this.chunks.shift();
      this.head = 0;
      first = this.chunks[0] as Int32Array;
    }
    const key = ((first[this.head] as number) >>> 0) * 64 + (first[this.head + 1] as number);
    this.head += 2;
    this.count--;
    if (this.count === 0) this.clear();
    return key;
  }
  clear(): void {
    this.chunks.length = 0;
    this.tailLen = 0;
    this.head = 0;
    this.count = 0;
  }
}

export class FibInstaller {
  /**
   * Changes not yet applied, in change order. A prefix may appear more than once (each entry is
   * its state at that time; applying them in order ends in the last): a map keyed by prefix
   * would cost ~4× as much per entry, and at a table load the queue holds every prefix while
   * the kernel catches up.
   */
  private readonly queue = new Queue();
  /**
   * Columnar IPv4 changes (opts.lookupV4), taken after `queue`: each installs the prefix's state at
   * the time it is taken, i.e. the newest, so whatever order they run in with `queue`, the last
   * operation on a prefix writes its current state.
   */
  private readonly v4q = new V4Queue();
  /** Failed prefixes, retried on the next flush (kept out of the queue so a flush cannot spin on them). */
  private readonly failed = new Map<string, Entry>();
  /** Removals held back while `holding` (graceful restart), applied by release(). */
  private readonly held = new Map<string, Entry>();
  /** Routes found installed by adoptInstalled() and not changed since: removed by release(). */
  private kept: Set<string> | undefined;
  /** Prefixes we installed, only for sinks that cannot list() their routes. */
  private readonly installed: Set<string> | undefined;
  private holding = false;
  private flushing: Promise<void> | undefined;
  private again = false;
  readonly errors = new Map<string, string>();

  constructor(
    private readonly sink: FibSink,
    private readonly opts: FibInstallerOptions = {},
  ) {
    if (!sink.list) this.installed = new Set();
  }

  /**
   * Graceful restart (restarting role): learn what is already installed and keep it until
   * release(); routes still not desired then are removed.
   */
  async adoptInstalled(): Promise<number> {
    const list = (await this.sink.list?.()) ?? [];
    this.kept = new Set();
    for (const r of list) this.kept.add(r.prefix);
    this.holding = true;
    return list.length;
  }

  /** End the hold: deletions of kept routes may now happen. */
  release(): Promise<void> {
    this.holding = false;
    // Older than anything queued since (a newer change of the prefix cleared its entry here).
    this.queue.prepend([...this.held.values(), ...(this.kept ?? [])]);
    this.held.clear();
    this.kept = undefined;
    return this.flush();
  }

  /** Remove every route this installer put in (FIB switched off or replaced). */
  async withdrawAll(): Promise<void> {
    this.holding = false;
    this.held.clear();
    this.failed.clear();
    this.queue.clear();
    this.v4q.clear();
    // Let a batch in flight land first, so that what it installs is listed (and removed) too.
    await this.flushing?.catch(() => undefined);
    const listed = this.sink.list ? await this.sink.list() : undefined;
    for (const k of listed ? listed.map((r) => r.prefix) : (this.installed ?? [])) this.queue.push(k);
    if (this.kept) for (const k of this.kept) this.queue.push(k);
    this.kept = undefined;
    return this.flush();
  }

  apply(changes: readonly DestChange[]): void {
    for (const c of changes) {
      if (!c.multipathChanged && !c.bestChanged) continue;
      const d = c.dest;
      const k = d.prefix;
      const e = this.wanted(d.best, d);
      // Nothing installed before and nothing to install now (a local prefix, a new destination
      // without a usable path): no kernel operation. Every change from installable to not is
      // queued, so a removal still owed is queued, failed or held already.
      if (typeof e === 'string' && !this.installable(c.previousBest) && !this.kept?.has(k)) continue;
      // This change decides the prefix: older failed or held states and a kept route give way.
      this.failed.delete(k);
      this.held.delete(k);
      this.kept?.delete(k);
      if (c.v4Addr !== undefined && c.v4Len !== undefined && this.opts.lookupV4) this.v4q.push(c.v4Addr, c.v4Len);
      else this.queue.push(e);
    }
  }

  private installable(best: Path | undefined): boolean {
    return best !== undefined && (best.source.type !== 'local' || this.opts.installLocal === true);
  }

  private wanted(best: Path | undefined, d: DestChange['dest']): Entry {
    if (best === undefined || !this.installable(best)) return d.prefix;
    const multi = d.multipath;
    if (multi.length <= 1) return best.attrs.nextHop === undefined ? d.prefix : best;
    const withHop = multi.filter((p) => p.attrs.nextHop !== undefined);
    if (withHop.length === 0) return d.prefix;
    return withHop.length === 1 ? (withHop[0] as Path) : withHop;
  }

  /** Changes waiting to be written (queued, failed or held). */
  get pending(): number {
    return this.queue.size + this.v4q.size + this.failed.size + this.held.size;
  }

  /** Apply pending changes to the sink; failures stay pending (see `errors`). Serialised. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = this.doFlush().finally(() => {
      this.flushing = undefined;
      if (this.again) {
        this.again = false;
        void this.flush();
      }
    });
    return this.flushing;
  }

  /** Record the outcome of one operation. */
  private done(e: Entry, err: unknown): void {
    const k = prefixOf(e);
    if (err !== undefined) {
      this.errors.set(k, errorMessage(err));
      // Retried on the next flush, before the changes queued since (so a newer one still wins).
      this.failed.set(k, e);
      this.opts.onError?.(k, err);
      return;
    }
    this.errors.delete(k);
    if (this.installed) {
      if (typeof e === 'string') this.installed.delete(k);
      else this.installed.add(k);
    }
  }

  /** The wanted state, now, of the oldest columnar prefix queued (undefined: none queued). */
  private nextV4(): Entry | undefined {
    const key = this.v4q.shift();
    if (key < 0 || !this.opts.lookupV4) return undefined;
    const d = this.opts.lookupV4(Math.floor(key / 64), key % 64);
    return this.wanted(d.best, d);
  }

  /** Takes up to `max` operations off the queue; removals wait in `held` while holding. */
  private take(max: number): { entries: Entry[]; ops: FibOp[] } {
    const entries: Entry[] = [];
    const ops: FibOp[] = [];
    while (ops.length < max) {
      const e = this.queue.size > 0 ? this.queue.shift() : this.nextV4();
      if (e === undefined) break;
      if (typeof e === 'string') {
        if (this.holding) {
          this.held.set(e, e);
          continue;
        }
        ops.push({ kind: 'delete', family: familyOfFibPrefix(e), prefix: e });
      } else ops.push({ kind: 'replace', route: toRoute(e) });
      entries.push(e);
    }
    return { entries, ops };
  }

  /**
   * Starts the next sink call. Synchronous on purpose: the FibOp/FibRoute objects of the batch are
   * referenced only here and by the sink, not by the awaiting flush, so with a sink that encodes
   * them at once (NetlinkFibSink) they die young instead of being promoted while the kernel works.
   */
  private start(batch: ((ops: readonly FibOp[]) => Promise<Array<unknown>>) | undefined): { entries: Entry[]; result: Promise<Array<unknown>> } | undefined {
    const { entries, ops } = this.take(batch ? FIB_BATCH : 1);
    if (ops.length === 0) return undefined;
    let result: Promise<Array<unknown>>;
    try {
      if (batch) result = batch(ops);
      else {
        const op = ops[0] as FibOp;
        result = Promise.resolve(op.kind === 'replace' ? this.sink.replace(op.route) : this.sink.delete(op.family, op.prefix)).then(() => [undefined]);
      }
    } catch (err) {
      result = Promise.reject(err ?? new Error('FIB sink failed'));
    }
    return { entries, result };
  }

  private async doFlush(): Promise<void> {
    this.queue.prepend([...this.failed.values()]);
    this.failed.clear();
    const batch = this.sink.applyBatch?.bind(this.sink);
    let cur = this.start(batch);
    while (cur) {
      // Two batches in flight: the next one is built and encoded while the kernel works on this
      // one (the netlink handle sends them in order), so the kernel does not wait for us.
      const next = batch ? this.start(batch) : undefined;
      let results: Array<unknown>;
      try {
        results = await cur.result;
      } catch (err) {
        results = cur.entries.map(() => err ?? new Error('FIB sink failed'));
      }
      for (let i = 0; i < cur.entries.length; i++) this.done(cur.entries[i] as Entry, results[i]);
      // Let the RIB and the sessions run between batches (a sink may answer without I/O).
      if (batch && (next || this.queue.size > 0 || this.v4q.size > 0)) await new Promise<void>((r) => setImmediate(r));
      cur = next ?? this.start(batch);
    }
  }
}

/** The route for a wanted state: the best path first, then the other ECMP next hops. */
function toRoute(want: Path | readonly Path[]): FibRoute {
  const paths: readonly Path[] = 'attrs' in want ? [want] : want;
  const best = paths[0] as Path;
  const prefix = best.prefix;
  const r: FibRoute = {
    family: familyOfFibPrefix(prefix),
    prefix,
    nextHops: paths.map((p) => ({ gateway: p.attrs.nextHop as string, peer: p.source.id })),
    attrs: best.attrs,
  };
  if (best.attrs.priority !== undefined) r.priority = best.attrs.priority;
  return r;
}
