/**
 * Fault injection for tests, usable with any backend: make the next N matching operations fail
 * with a typed error, or run a hook first (e.g. a concurrent writer, so a CAS update loses for
 * real). IPAM tests use it for ConflictError storms.
 *
 *   const ds = withFaults(await openDatastore(cfg));
 *   ds.injectFault({ op: 'update', kind: 'IPAMBlock', count: 5 });           // 5 ConflictErrors
 *   ds.injectFault({ op: 'update', kind: 'IPAMBlock', before: async () => { await other.update(…) } });
 */
import type { Resource } from '../api/meta.js';
import { tagged } from './commit.js';
import { resolveKind } from './common.js';
import type { CommitOp, CommitResult, Datastore, DeleteOptions, ListOptions, ListResult, WatchEvent, WatchOptions, Watcher } from './types.js';
import { ConflictError, UnavailableError } from './types.js';

export type FaultOp = 'get' | 'list' | 'create' | 'update' | 'delete';

export interface FaultSpec {
  op: FaultOp;
  /** Only operations on this kind (any name/alias); omitted = every kind. */
  kind?: string;
  /** Only operations on this object name. */
  name?: string;
  /** How many matching operations are affected (default 1). */
  count?: number;
  /** Run this before the operation proceeds (no error thrown unless `error` is also given). */
  before?: (kind: string, name: string) => void | Promise<void>;
  /** The error to throw. Default (when no `before`): ConflictError for update/delete/create, UnavailableError otherwise. */
  error?: (kind: string, name: string) => Error;
}

/** A list of pending faults; `apply` consumes the first one matching an operation. */
export class FaultPlan {
  private faults: Array<FaultSpec & { left: number }> = [];
  /** How many operations were hit by a fault so far. */
  hits = 0;

  inject(spec: FaultSpec): void {
    this.faults.push({ ...spec, left: spec.count ?? 1 });
  }

  clear(): void {
    this.faults = [];
  }

  get pending(): number {
    return this.faults.reduce((n, f) => n + f.left, 0);
  }

  async apply(op: FaultOp, kind: string, name: string): Promise<void> {
    if (this.faults.length === 0) return;
    const info = resolveKind(kind);
    const f = this.faults.find((x) => x.op === op && (x.kind === undefined || resolveKind(x.kind) === info) && (x.name === undefined || x.name === name));
    if (!f) return;
    f.left--;
    if (f.left <= 0) this.faults.splice(this.faults.indexOf(f), 1);
    this.hits++;
    if (f.before) await f.before(info.kind, name);
    if (f.error) throw f.error(info.kind, name);
    if (f.before) return;
    if (op === 'get' || op === 'list') throw new UnavailableError('fault-injection', new Error(`injected fault on ${op}`));
    throw new ConflictError(info.kind, name, `injected fault on ${op}`);
  }
}

export interface FaultInjectingDatastore extends Datastore {
  injectFault(spec: FaultSpec): void;
  clearFaults(): void;
  readonly faults: FaultPlan;
  /** The wrapped store. */
  readonly inner: Datastore;
}

/** Wrap any datastore so tests can inject faults into its operations (watch passes through). */
export function withFaults(inner: Datastore): FaultInjectingDatastore {
  const plan = new FaultPlan();
  const wrapped: FaultInjectingDatastore = {
    type: inner.type,
    inner,
    faults: plan,
    injectFault: (s) => plan.inject(s),
    clearFaults: () => plan.clear(),
    async get<T extends Resource = Resource>(kind: string, name: string, namespace?: string): Promise<T> {
      await plan.apply('get', kind, name);
      return inner.get<T>(kind, name, namespace);
    },
    async list<T extends Resource = Resource>(kind: string, opts?: ListOptions): Promise<ListResult<T>> {
      await plan.apply('list', kind, '');
      return inner.list<T>(kind, opts);
    },
    async create<T extends Resource>(obj: T): Promise<T> {
      await plan.apply('create', obj.kind, obj.metadata?.name ?? '');
      return inner.create(obj);
    },
    async update<T extends Resource>(obj: T): Promise<T> {
      await plan.apply('update', obj.kind, obj.metadata?.name ?? '');
      return inner.update(obj);
    },
    async delete<T extends Resource = Resource>(kind: string, name: string, opts?: DeleteOptions): Promise<T> {
      await plan.apply('delete', kind, name);
      return inner.delete<T>(kind, name, opts);
    },
    watch<T extends Resource = Resource>(kind: string, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): Watcher {
      return inner.watch<T>(kind, opts, onEvent);
    },
    close: () => inner.close(),
  };
  const commit = inner.commit?.bind(inner);
  if (commit) {
    // Each op meets the faults of its single-object counterpart (a check op meets none).
    wrapped.commit = async (ops: readonly CommitOp[]): Promise<CommitResult> => {
      for (const [i, op] of ops.entries()) {
        if (op.op === 'check') continue;
        const [kind, name] = op.op === 'delete' ? [op.kind, op.name] : [op.object.kind, op.object.metadata?.name ?? ''];
        try {
          await plan.apply(op.op, kind, name);
        } catch (err) {
          throw tagged(i, err);
        }
      }
      return commit(ops);
    };
  }
  return wrapped;
}
