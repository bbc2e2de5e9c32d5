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
 * prefixes changed since they were last applied — one map slot per prefix (coalesced: a prefix that
 * changes ten times before the kernel catches up is written once, with its last state) pointing at
 * the best path (or ECMP set) the RIB already keeps — and builds FibRoute objects for one batch at
 * a time. The kernel is the record of what is installed: withdrawAll() asks the sink (list()).
 */
import { errorMessage } from '../../lib/errors.js';
import type { Family, PathAttributes } from '../types.js';
import type { DestChange } from '../rib/loc-rib.js';
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
  onError?: (prefix: string, err: unknown) => void;
}

/**
 * What a prefix should become: its best path (one next hop), the ECMP set, or REMOVE. Paths are
 * the RIB's own objects (immutable attributes), so a pending change costs no allocation.
 */
type Want = Path | readonly Path[] | typeof REMOVE;
const REMOVE = null;

export class FibInstaller {
  /** Prefixes changed and not yet applied, in change order; the value is the latest wanted state. */
  private readonly dirty = new Map<string, Want>();
  /** Failed prefixes, retried on the next flush (kept out of `dirty` so a flush cannot spin on them). */
  private readonly failed = new Map<string, Want>();
  /** Removals held back while `holding` (graceful restart), applied by release(). */
  private readonly held = new Map<string, Want>();
  /** Routes found installed by adoptInstalled() and not rewritten since: removed by release(). */
  private kept: Set<string> | undefined;
  /** Prefixes we installed, only for sinks that cannot list() their routes. */
  private readonly installed: Set<string> | undefined;
  private holding = false;
  private iter: IterableIterator<[string, Want]> | undefined;
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
    for (const [k, want] of this.held) if (!this.dirty.has(k)) this.dirty.set(k, want);
    this.held.clear();
    if (this.kept) for (const k of this.kept) if (!this.dirty.has(k)) this.dirty.set(k, REMOVE);
    this.kept = undefined;
    return this.flush();
  }

  /** Remove every route this installer put in (FIB switched off or replaced). */
  async withdrawAll(): Promise<void> {
    this.holding = false;
    this.held.clear();
    this.failed.clear();
    this.dirty.clear();
    // Let a batch in flight land first, so that what it installs is listed (and removed) too.
    await this.flushing?.catch(() => undefined);
    const listed = this.sink.list ? await this.sink.list() : undefined;
    for (const k of listed ? listed.map((r) => r.prefix) : (this.installed ?? [])) this.dirty.set(k, REMOVE);
    if (this.kept) for (const k of this.kept) this.dirty.set(k, REMOVE);
    this.kept = undefined;
    return this.flush();
  }

  apply(changes: readonly DestChange[]): void {
    for (const c of changes) {
      if (!c.multipathChanged && !c.bestChanged) continue;
      const d = c.dest;
      const k = d.prefix;
      const want = this.wanted(d.best, d);
      // Nothing installed before and nothing to install now (a local prefix, a new destination
      // without a usable path): no kernel operation, unless one is still pending for it.
      if (want === REMOVE && !this.installable(c.previousBest) && !this.dirty.has(k) && !this.failed.has(k) && !this.held.has(k) && !this.kept?.has(k)) continue;
      // Delete first: a changed prefix moves to the end, so the map stays in change order.
      this.dirty.delete(k);
      this.dirty.set(k, want);
    }
  }

  private installable(best: Path | undefined): boolean {
    return best !== undefined && (best.source.type !== 'local' || this.opts.installLocal === true);
  }

  private wanted(best: Path | undefined, d: DestChange['dest']): Want {
    if (best === undefined || !this.installable(best)) return REMOVE;
    const multi = d.multipath;
    if (multi.length <= 1) return best.attrs.nextHop === undefined ? REMOVE : best;
    const withHop = multi.filter((p) => p.attrs.nextHop !== undefined);
    if (withHop.length === 0) return REMOVE;
    return withHop.length === 1 ? (withHop[0] as Path) : withHop;
  }

  /** Prefixes waiting to be written (changed, failed or held). */
  get pending(): number {
    let n = this.dirty.size + this.held.size;
    for (const k of this.failed.keys()) if (!this.dirty.has(k) && !this.held.has(k)) n++;
    return n;
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

  /** The next operation for a pending prefix, or undefined when it is held back (restart). */
  private opFor(k: string, want: Want): FibOp | undefined {
    if (want === REMOVE) {
      if (this.holding) {
        this.held.set(k, want);
        return undefined;
      }
      return { kind: 'delete', family: familyOfFibPrefix(k), prefix: k };
    }
    return { kind: 'replace', route: toRoute(k, want) };
  }

  /** Record the outcome of one operation. */
  private done(k: string, want: Want, err: unknown): void {
    if (err !== undefined) {
      this.errors.set(k, errorMessage(err));
      // A newer change supersedes the failed one; otherwise retry it on the next flush.
      if (!this.dirty.has(k)) this.failed.set(k, want);
      this.opts.onError?.(k, err);
      return;
    }
    this.errors.delete(k);
    this.kept?.delete(k);
    if (this.installed) {
      if (want === REMOVE) this.installed.delete(k);
      else this.installed.add(k);
    }
  }

  /** Moves the failed prefixes back to the queue (unless a newer change is there). */
  private retryFailed(): void {
    for (const [k, want] of this.failed) if (!this.dirty.has(k)) this.dirty.set(k, want);
    this.failed.clear();
  }

  /**
   * Takes up to `max` pending prefixes off the queue, in change order. One live iterator: changes
   * that arrive while a batch is in flight are appended and seen by it (a fresh iterator per batch
   * would walk the holes the taken entries leave at the front of the map).
   */
  private take(max: number): { keys: string[]; wants: Want[]; ops: FibOp[] } {
    const keys: string[] = [];
    const wants: Want[] = [];
    const ops: FibOp[] = [];
    let it = this.iter ?? this.dirty.entries();
    while (ops.length < max) {
      const e = it.next();
      if (e.done) {
        // An exhausted iterator stays exhausted; entries added since need a new one.
        if (this.dirty.size === 0) break;
        it = this.dirty.entries();
        continue;
      }
      const [k, want] = e.value;
      this.dirty.delete(k);
      const op = this.opFor(k, want);
      if (!op) continue;
      ops.push(op);
      keys.push(k);
      wants.push(want);
    }
    this.iter = it;
    return { keys, wants, ops };
  }

  /**
   * Starts the next sink call. Synchronous on purpose: the FibOp/FibRoute objects of the batch are
   * referenced only here and by the sink, not by the awaiting flush, so with a sink that encodes
   * them at once (NetlinkFibSink) they die young instead of being promoted while the kernel works.
   */
  private start(batch: ((ops: readonly FibOp[]) => Promise<Array<unknown>>) | undefined): { keys: string[]; wants: Want[]; result: Promise<Array<unknown>> } | undefined {
    const { keys, wants, ops } = this.take(batch ? FIB_BATCH : 1);
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
    return { keys, wants, result };
  }

  private async doFlush(): Promise<void> {
    this.retryFailed();
    this.iter = undefined;
    const batch = this.sink.applyBatch?.bind(this.sink);
    for (;;) {
      const run = this.start(batch);
      if (!run) break;
      let results: Array<unknown>;
      try {
        results = await run.result;
      } catch (err) {
        results = run.keys.map(() => err ?? new Error('FIB sink failed'));
      }
      for (let i = 0; i < run.keys.length; i++) this.done(run.keys[i] as string, run.wants[i] as Want, results[i]);
      // Let the RIB and the sessions run between batches.
      if (batch && this.dirty.size > 0) await new Promise<void>((r) => setImmediate(r));
    }
    this.iter = undefined;
  }
}

/** The route for a wanted state: the best path first, then the other ECMP next hops. */
function toRoute(prefix: string, want: Path | readonly Path[]): FibRoute {
  const paths: readonly Path[] = 'attrs' in want ? [want] : want;
  const best = paths[0]!;
  const r: FibRoute = {
    family: familyOfFibPrefix(prefix),
    prefix,
    nextHops: paths.map((p) => ({ gateway: p.attrs.nextHop as string, peer: p.source.id })),
    attrs: best.attrs,
  };
  if (best.attrs.priority !== undefined) r.priority = best.attrs.priority;
  return r;
}
