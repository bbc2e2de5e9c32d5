/**
 * Kernel installation of best paths, through a pluggable sink.
 *
 *   Loc-RIB DestChange ─► FibInstaller (desired state, pure) ─► flush() ─► FibSink (I/O)
 *
 * The sink decides *how* a route is installed (plain next hop, tunnel device, CrossSubnet…), so
 * felix can own those decisions; the speaker only says which prefixes go where. Setters never do
 * I/O; flush() applies the difference and keeps failed keys for the next flush.
 */
import { errorMessage } from '../../lib/errors.js';
import type { Family, PathAttributes } from '../types.js';
import { destKey, type DestChange } from '../rib/loc-rib.js';

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
  /** Routes of ours already installed (kept from a previous run); used to clean up after restart. */
  list?(): Promise<Array<{ family: Family; prefix: string }>> | Array<{ family: Family; prefix: string }>;
  /**
   * Optional: apply many operations at once (e.g. pipelined netlink). Resolves to one entry per
   * operation, index-aligned: undefined = done, else the error. Without it flush() awaits
   * replace()/delete() one route at a time.
   */
  applyBatch?(ops: readonly FibOp[]): Promise<Array<unknown>>;
}

export type FibOp = { kind: 'replace'; route: FibRoute } | { kind: 'delete'; family: Family; prefix: string };

/** Routes per applyBatch() call: bounds the memory of one call and lets the event loop breathe. */
const FIB_BATCH = 4096;

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
    this.routes.set(destKey(route.family, route.prefix), route);
    this.log.push(`replace ${route.prefix} via ${route.nextHops.map((n) => n.gateway).join(',')}`);
  }

  delete(family: Family, prefix: string): void {
    this.routes.delete(destKey(family, prefix));
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

export class FibInstaller {
  private readonly desired = new Map<string, FibRoute>();
  private readonly installed = new Map<string, FibRoute | { family: Family; prefix: string; nextHops?: undefined }>();
  private readonly dirty = new Set<string>();
  private holding = false;
  private flushing: Promise<void> | undefined;
  private again = false;
  readonly errors = new Map<string, string>();

  constructor(
    private readonly sink: FibSink,
    private readonly opts: FibInstallerOptions = {},
  ) {}

  /**
   * Graceful restart (restarting role): learn what is already installed and keep it until
   * release(); routes still not desired then are removed.
   */
  async adoptInstalled(): Promise<number> {
    const list = (await this.sink.list?.()) ?? [];
    for (const r of list) {
      const k = destKey(r.family, r.prefix);
      this.installed.set(k, { family: r.family, prefix: r.prefix });
      this.dirty.add(k);
    }
    this.holding = true;
    return list.length;
  }

  /** End the hold: deletions of kept routes may now happen. */
  release(): Promise<void> {
    this.holding = false;
    return this.flush();
  }

  /** Remove every route this installer put in (FIB switched off or replaced). */
  withdrawAll(): Promise<void> {
    this.desired.clear();
    this.holding = false;
    for (const k of this.installed.keys()) this.dirty.add(k);
    return this.flush();
  }

  apply(changes: readonly DestChange[]): void {
    for (const c of changes) {
      if (!c.multipathChanged && !c.bestChanged) continue;
      const d = c.dest;
      const k = destKey(d.family, d.prefix);
      const best = d.best;
      if (!best || d.paths.size === 0 || (best.source.type === 'local' && !this.opts.installLocal)) {
        this.desired.delete(k);
      } else {
        const nextHops = d.multipath
          .filter((p) => p.attrs.nextHop !== undefined)
          .map((p) => ({ gateway: p.attrs.nextHop as string, peer: p.source.id }));
        if (nextHops.length === 0) this.desired.delete(k);
        else {
          const r: FibRoute = { family: d.family, prefix: d.prefix, nextHops, attrs: best.attrs };
          if (best.attrs.priority !== undefined) r.priority = best.attrs.priority;
          this.desired.set(k, r);
        }
      }
      this.dirty.add(k);
    }
  }

  get pending(): number {
    return this.dirty.size;
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

  private async doFlush(): Promise<void> {
    if (this.sink.applyBatch) return this.doFlushBatched(this.sink.applyBatch.bind(this.sink));
    const keys = [...this.dirty];
    for (const k of keys) {
      const want = this.desired.get(k);
      const have = this.installed.get(k);
      try {
        if (want) {
          if (have && 'attrs' in have && sameRoute(have, want)) {
            this.dirty.delete(k);
            continue;
          }
          await this.sink.replace(want);
          this.installed.set(k, want);
        } else if (have) {
          if (this.holding) continue;
          await this.sink.delete(have.family, have.prefix);
          this.installed.delete(k);
        }
        this.dirty.delete(k);
        this.errors.delete(k);
      } catch (err) {
        this.errors.set(k, errorMessage(err));
        this.opts.onError?.(want?.prefix ?? have?.prefix ?? k, err);
      }
    }
  }

  private async doFlushBatched(applyBatch: (ops: readonly FibOp[]) => Promise<Array<unknown>>): Promise<void> {
    const keys = [...this.dirty];
    for (let at = 0; at < keys.length; at += FIB_BATCH) {
      const ops: FibOp[] = [];
      const opKeys: string[] = [];
      for (const k of keys.slice(at, at + FIB_BATCH)) {
        const want = this.desired.get(k);
        const have = this.installed.get(k);
        if (want) {
          if (have && 'attrs' in have && sameRoute(have, want)) {
            this.dirty.delete(k);
            continue;
          }
          ops.push({ kind: 'replace', route: want });
        } else if (have) {
          if (this.holding) continue;
          ops.push({ kind: 'delete', family: have.family, prefix: have.prefix });
        } else {
          this.dirty.delete(k);
          this.errors.delete(k);
          continue;
        }
        opKeys.push(k);
      }
      if (ops.length === 0) continue;
      let results: Array<unknown>;
      try {
        results = await applyBatch(ops);
      } catch (err) {
        results = ops.map(() => err);
      }
      ops.forEach((op, i) => {
        const k = opKeys[i]!;
        const err = results[i];
        if (err !== undefined) {
          this.errors.set(k, errorMessage(err));
          this.opts.onError?.(op.kind === 'replace' ? op.route.prefix : op.prefix, err);
          return;
        }
        if (op.kind === 'replace') this.installed.set(k, op.route);
        else this.installed.delete(k);
        // A change that arrived while the batch ran keeps the key dirty only if it differs.
        const want = this.desired.get(k);
        if (op.kind === 'replace' ? want === op.route : want === undefined) this.dirty.delete(k);
        this.errors.delete(k);
      });
    }
  }
}

function sameRoute(a: FibRoute, b: FibRoute): boolean {
  if (a.nextHops.length !== b.nextHops.length || a.priority !== b.priority) return false;
  return a.nextHops.every((n, i) => n.gateway === b.nextHops[i]?.gateway);
}
