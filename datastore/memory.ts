/**
 * In-memory datastore for unit tests and single-process tools. Same contract as the real backends
 * (one global monotonic revision, resourceVersion = revision of the last write, CAS, watch from a
 * revision with a bounded event history that can be compacted on purpose to exercise relists).
 *
 * Fault injection (`injectFault`) lets tests force typed errors on the next N operations, e.g. a
 * storm of ConflictErrors on IPAMBlock updates.
 */
import type { Resource } from '../api/meta.js';
import type { KindInfo } from '../api/kinds.js';
import {
  WatchState,
  compareByKey,
  keyOf,
  listFilter,
  normalizeForWrite,
  objectKey,
  resolveKind,
  rev,
  stampCreate,
} from './common.js';
import { FaultPlan, type FaultOp, type FaultSpec } from './faults.js';
import type { CommitOp, CommitResult, Datastore, DeleteOptions, ListOptions, ListResult, WatchEvent, WatchOptions, Watcher } from './types.js';
import { AlreadyExistsError, ConflictError, NotFoundError } from './types.js';
import { precondition, prepareCommit, tagged } from './commit.js';

export type { FaultOp, FaultSpec } from './faults.js';

interface Entry {
  obj: Resource;
}

interface LogRecord {
  rev: bigint;
  plural: string;
  key: string;
  prev: Resource | undefined;
  cur: Resource | undefined;
}

interface MemWatch {
  info: KindInfo;
  deliver(r: LogRecord): void;
  /** Catch up from the watcher's last revision (replay history, or relist when compacted). */
  catchUp(): void;
  stop(): void;
}

export interface MemoryDatastoreOptions {
  /** How many past changes are kept for watch-from-revision (older = compacted → relist). Default 10000. */
  historyLimit?: number;
}

export class MemoryDatastore implements Datastore {
  readonly type = 'memory';
  private revision = 0n;
  private readonly data = new Map<string, Map<string, Entry>>();
  private log: LogRecord[] = [];
  /** Lowest revision a watch may start after (everything older is compacted). */
  private compactedAt = 0n;
  private readonly historyLimit: number;
  private readonly watchers = new Set<MemWatch>();
  /** Pending injected faults (see datastore/faults.ts). */
  readonly faults = new FaultPlan();
  private suspended = false;

  constructor(opts: MemoryDatastoreOptions = {}) {
    this.historyLimit = opts.historyLimit ?? 10000;
  }

  /** Make the next `count` matching operations fail or run a hook first (test hook; see faults.ts). */
  injectFault(spec: FaultSpec): void {
    this.faults.inject(spec);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Drop the change history up to the current revision; watchers behind it will relist (test hook). */
  compact(): void {
    this.compactedAt = this.revision;
    this.log = [];
  }

  /**
   * Simulate a lost watch connection (test hook): changes are not delivered to running watchers
   * until resumeWatches(), which makes every watcher catch up from its last revision like a
   * reconnecting client (replaying history, or relisting when compact() dropped it meanwhile).
   */
  suspendWatches(): void {
    this.suspended = true;
  }

  resumeWatches(): void {
    this.suspended = false;
    for (const w of this.watchers) w.catchUp();
  }

  /** Current store revision (test helper). */
  currentRevision(): string {
    return this.revision.toString();
  }

  private checkFault(op: FaultOp, info: KindInfo, name: string): Promise<void> {
    return this.faults.apply(op, info.kind, name);
  }

  private table(info: KindInfo): Map<string, Entry> {
    let t = this.data.get(info.plural);
    if (!t) {
      t = new Map();
      this.data.set(info.plural, t);
    }
    return t;
  }

  private record(info: KindInfo, key: string, prev: Resource | undefined, cur: Resource | undefined): void {
    const r: LogRecord = { rev: this.revision, plural: info.plural, key, prev, cur };
    this.log.push(r);
    // Trim in batches (keeps between historyLimit and 2×historyLimit records) so writes stay O(1).
    if (this.log.length > 2 * this.historyLimit) {
      const dropped = this.log.splice(0, this.log.length - this.historyLimit);
      const last = dropped[dropped.length - 1];
      if (last) this.compactedAt = last.rev;
    }
    if (this.suspended) return;
    for (const w of this.watchers) if (w.info === info) w.deliver(r);
  }

  async get<T extends Resource = Resource>(kind: string, name: string, namespace?: string): Promise<T> {
    const info = resolveKind(kind);
    await this.checkFault('get', info, name);
    const e = this.table(info).get(objectKey(info, name, namespace));
    if (!e) throw new NotFoundError(info.kind, name);
    return structuredClone(e.obj) as T;
  }

  async list<T extends Resource = Resource>(kind: string, opts?: ListOptions): Promise<ListResult<T>> {
    const info = resolveKind(kind);
    await this.checkFault('list', info, '');
    const f = listFilter(info, opts);
    const items = [...this.table(info).values()].map((e) => e.obj).filter(f).sort(compareByKey);
    return { items: structuredClone(items) as T[], revision: this.revision.toString() };
  }

  async create<T extends Resource>(obj: T): Promise<T> {
    const { info, obj: o } = normalizeForWrite(obj);
    await this.checkFault('create', info, o.metadata.name);
    const t = this.table(info);
    const key = keyOf(info, o);
    if (t.has(key)) throw new AlreadyExistsError(info.kind, o.metadata.name);
    stampCreate(o);
    this.revision++;
    o.metadata.resourceVersion = this.revision.toString();
    t.set(key, { obj: o });
    this.record(info, key, undefined, o);
    return structuredClone(o);
  }

  async update<T extends Resource>(obj: T): Promise<T> {
    const { info, obj: o } = normalizeForWrite(obj);
    await this.checkFault('update', info, o.metadata.name);
    const t = this.table(info);
    const key = keyOf(info, o);
    const e = t.get(key);
    if (!e) throw new NotFoundError(info.kind, o.metadata.name);
    if (o.metadata.resourceVersion === undefined || o.metadata.resourceVersion === '') {
      throw new ConflictError(info.kind, o.metadata.name, 'update needs metadata.resourceVersion');
    }
    if (o.metadata.resourceVersion !== e.obj.metadata.resourceVersion) {
      throw new ConflictError(info.kind, o.metadata.name, `resourceVersion ${o.metadata.resourceVersion} is stale (now ${e.obj.metadata.resourceVersion})`);
    }
    o.metadata.uid = e.obj.metadata.uid;
    o.metadata.creationTimestamp = e.obj.metadata.creationTimestamp;
    this.revision++;
    o.metadata.resourceVersion = this.revision.toString();
    const prev = e.obj;
    t.set(key, { obj: o });
    this.record(info, key, prev, o);
    return structuredClone(o);
  }

  async delete<T extends Resource = Resource>(kind: string, name: string, opts?: DeleteOptions): Promise<T> {
    const info = resolveKind(kind);
    await this.checkFault('delete', info, name);
    const t = this.table(info);
    const key = objectKey(info, name, opts?.namespace);
    const e = t.get(key);
    if (!e) throw new NotFoundError(info.kind, name);
    if (opts?.resourceVersion !== undefined && opts.resourceVersion !== e.obj.metadata.resourceVersion) {
      throw new ConflictError(info.kind, name, `delete precondition resourceVersion ${opts.resourceVersion} failed (now ${e.obj.metadata.resourceVersion})`);
    }
    t.delete(key);
    this.revision++;
    this.record(info, key, e.obj, undefined);
    return structuredClone(e.obj) as T;
  }

  /** All-or-nothing: faults and preconditions are checked for every op before anything is written. */
  async commit(ops: readonly CommitOp[]): Promise<CommitResult> {
    const prepared = prepareCommit(ops);
    for (const [i, p] of prepared.entries()) {
      if (p.op === 'check') continue;
      try {
        await this.checkFault(p.op, p.info, p.name);
      } catch (err) {
        throw tagged(i, err);
      }
    }
    // From here on nothing awaits: validation and application see one state.
    for (const [i, p] of prepared.entries()) {
      const err = precondition(p, this.table(p.info).get(p.key)?.obj.metadata.resourceVersion);
      if (err) throw tagged(i, err);
    }
    this.revision++;
    const revision = this.revision.toString();
    const objects: Array<Resource | undefined> = [];
    for (const p of prepared) {
      const t = this.table(p.info);
      const e = t.get(p.key);
      if (p.op === 'check') {
        objects.push(undefined);
      } else if (p.op === 'delete') {
        t.delete(p.key);
        this.record(p.info, p.key, e?.obj, undefined);
        objects.push(undefined);
      } else {
        const o = p.object as Resource;
        if (p.op === 'create') stampCreate(o);
        else {
          o.metadata.uid = e?.obj.metadata.uid;
          o.metadata.creationTimestamp = e?.obj.metadata.creationTimestamp;
        }
        o.metadata.resourceVersion = revision;
        t.set(p.key, { obj: o });
        this.record(p.info, p.key, e?.obj, o);
        objects.push(structuredClone(o));
      }
    }
    return { objects, revision };
  }

  watch<T extends Resource = Resource>(kind: string, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): Watcher {
    const info = resolveKind(kind);
    const filter = listFilter(info, opts);
    let stopped = false;
    const emit = (ev: WatchEvent<T>): void => {
      if (!stopped) onEvent(structuredClone(ev));
    };
    const state = new WatchState<T>((o) => keyOf(info, o), filter, emit);
    // Deliver asynchronously and in order, like a real store's watch stream.
    const queue: LogRecord[] = [];
    let scheduled = false;
    const drain = (): void => {
      scheduled = false;
      while (!stopped && queue.length) {
        const r = queue.shift() as LogRecord;
        state.change(r.key, r.prev as T | undefined, r.cur as T | undefined, r.rev, r.cur ? (r.prev ? 'MODIFIED' : 'ADDED') : 'DELETED');
      }
    };
    const schedule = (): void => {
      if (!scheduled) {
        scheduled = true;
        setImmediate(drain);
      }
    };
    const catchUp = (): void => {
      if (stopped) return;
      queue.length = 0;
      if (state.lastRevision < this.compactedAt) {
        this.relist(info, state);
        return;
      }
      queue.push(...this.log.filter((r) => r.plural === info.plural && r.rev > state.lastRevision));
      schedule();
    };
    let started = false;
    const w: MemWatch = {
      info,
      deliver: (r) => {
        if (!started) return; // the start below reads the log itself
        queue.push(r);
        schedule();
      },
      catchUp: () => {
        if (started) setImmediate(catchUp);
      },
      stop: () => {
        stopped = true;
        this.watchers.delete(w);
      },
    };
    this.watchers.add(w);
    setImmediate(() => {
      if (stopped) return;
      started = true;
      const all = [...this.table(info).values()].map((e) => e.obj) as T[];
      if (opts.revision === undefined) {
        state.resync(all, this.revision);
        return;
      }
      state.seed(all, rev(opts.revision));
      catchUp();
    });
    return {
      stop: async () => w.stop(),
    };
  }

  private relist<T extends Resource>(info: KindInfo, state: WatchState<T>): void {
    const all = [...this.table(info).values()].map((e) => e.obj) as T[];
    state.resync(all, this.revision);
  }

  /** Stops delivery to every watcher; the data stays usable (tests may share one store). */
  async close(): Promise<void> {
    for (const w of [...this.watchers]) w.stop();
  }
}
