/**
 * Backend-independent pieces shared by the memory, etcd and kubernetes backends: kind/namespace
 * resolution, list filters, object normalisation, and `WatchState`, the bookkeeping that turns raw
 * store changes (and relists) into the contract's watch events without losing or duplicating any.
 */
import { randomUUID } from 'node:crypto';
import type { KindInfo } from '../api/kinds.js';
import { findKind } from '../api/kinds.js';
import type { Resource } from '../api/meta.js';
import { parseLabelSelector } from './labels.js';
import type { ListOptions, WatchEvent } from './types.js';
import { DatastoreError, UnavailableError } from './types.js';

export class UnknownKindError extends DatastoreError {
  constructor(kind: string) {
    super('UnknownKind', `unknown resource kind ${JSON.stringify(kind)}`, { hint: 'see api/kinds.ts for the kinds tabby stores' });
  }
}

export function resolveKind(kind: string): KindInfo {
  const info = findKind(kind);
  if (!info) throw new UnknownKindError(kind);
  return info;
}

/** Namespace actually used: namespaced kinds default to "default"; cluster kinds have none. */
export function effectiveNamespace(info: KindInfo, ns: string | undefined): string | undefined {
  if (!info.namespaced) return undefined;
  return ns === undefined || ns === '' ? 'default' : ns;
}

/** Map key inside one kind: `<ns>/<name>` for namespaced kinds, `<name>` otherwise. */
export function objectKey(info: KindInfo, name: string, ns: string | undefined): string {
  return info.namespaced ? `${effectiveNamespace(info, ns)}/${name}` : name;
}

export function keyOf(info: KindInfo, obj: Resource): string {
  return objectKey(info, obj.metadata.name, obj.metadata.namespace);
}

export class InvalidObjectError extends DatastoreError {
  constructor(detail: string) {
    super('InvalidObject', detail);
  }
}

/** Validates the envelope and returns a deep copy with kind/apiVersion/namespace normalised. */
export function normalizeForWrite<T extends Resource>(obj: T): { info: KindInfo; obj: T } {
  if (!obj || typeof obj !== 'object' || typeof obj.kind !== 'string') throw new InvalidObjectError('object has no kind');
  const info = resolveKind(obj.kind);
  const name = obj.metadata?.name;
  if (typeof name !== 'string' || name === '') throw new InvalidObjectError(`${info.kind} has no metadata.name`);
  if (name.includes('/')) throw new InvalidObjectError(`${info.kind} name ${JSON.stringify(name)} must not contain "/"`);
  const copy = structuredClone(obj);
  copy.kind = info.kind;
  copy.apiVersion = info.apiVersion;
  const ns = effectiveNamespace(info, copy.metadata.namespace);
  if (ns === undefined) delete copy.metadata.namespace;
  else copy.metadata.namespace = ns;
  return { info, obj: copy };
}

/** Fill uid/creationTimestamp on create (kept when the caller supplies them, e.g. restores). */
export function stampCreate(obj: Resource): void {
  obj.metadata.uid ??= randomUUID();
  obj.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export type ObjectFilter = (obj: Resource) => boolean;

/** Filter for namespace + name prefix + label selector (throws LabelSelectorError on bad syntax). */
export function listFilter(info: KindInfo, opts: ListOptions | undefined, { labels = true } = {}): ObjectFilter {
  const ns = info.namespaced ? opts?.namespace : undefined;
  const prefix = opts?.namePrefix;
  const sel = labels && opts?.labelSelector ? parseLabelSelector(opts.labelSelector) : undefined;
  return (o) =>
    (ns === undefined || ns === '' || o.metadata.namespace === ns) &&
    (prefix === undefined || o.metadata.name.startsWith(prefix)) &&
    (sel === undefined || sel.matches(o.metadata.labels));
}

export function compareByKey(a: Resource, b: Resource): number {
  const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function rev(v: string | number | bigint | undefined): bigint {
  if (v === undefined || v === '') return 0n;
  return BigInt(v);
}

/**
 * What one watcher has delivered so far, and the rules that keep its event stream exact:
 * - changes at or below the last delivered revision are dropped (duplicates after a resume);
 * - a change is typed from what this watcher delivered: entering the filter = ADDED, staying =
 *   MODIFIED, leaving it or deletion = DELETED (with the last delivered state);
 * - a relist emits only the differences against the delivered state, then SYNCED.
 * Keys whose state at the start revision is unknown (watch started from a caller's revision) are
 * "uncertain": their first change passes through with the backend's own type.
 */
export class WatchState<T extends Resource = Resource> {
  private readonly known = new Map<string, T>();
  private readonly certain = new Set<string>();
  /** All keys are certain (initial list done by us). */
  private allCertain = false;
  lastRevision = 0n;
  /** Keys already delivered at lastRevision (one etcd revision may carry several keys). */
  private keysAtLast = new Set<string>();
  /** Every change at lastRevision has been delivered (after a list/seed). */
  private completeAtLast = true;

  constructor(
    private readonly keyFn: (o: T) => string,
    private readonly filter: (o: T) => boolean,
    private readonly emit: (ev: WatchEvent<T>) => void,
  ) {}

  /** Start from a caller's revision: objects unchanged since then (rv <= base) are what the caller has. */
  seed(current: T[], base: bigint): void {
    for (const o of current) {
      if (rev(o.metadata.resourceVersion) <= base && this.filter(o)) {
        const k = this.keyFn(o);
        this.known.set(k, o);
        this.certain.add(k);
      }
    }
    this.lastRevision = base;
    this.keysAtLast.clear();
    this.completeAtLast = true;
  }

  /** Revision a (re)started backend watch must start at: lastRevision+1, or lastRevision if it may be partial. */
  resumeFrom(): bigint {
    return this.completeAtLast ? this.lastRevision + 1n : this.lastRevision;
  }

  /**
   * One store change at revision `at`. `prev` is the state before (if the backend knows it), `cur`
   * the new state (undefined = deleted). `hint` is the backend's own type for uncertain keys.
   */
  change(key: string, prev: T | undefined, cur: T | undefined, at: bigint, hint?: 'ADDED' | 'MODIFIED' | 'DELETED'): void {
    if (at < this.lastRevision) return;
    if (at === this.lastRevision) {
      if (this.completeAtLast || this.keysAtLast.has(key)) return;
    } else {
      this.lastRevision = at;
      this.keysAtLast.clear();
      this.completeAtLast = false;
    }
    this.keysAtLast.add(key);
    const isCertain = this.allCertain || this.certain.has(key);
    const known = this.known.get(key);
    const wasIn = known !== undefined || (!isCertain && prev !== undefined && this.filter(prev));
    const isIn = cur !== undefined && this.filter(cur);
    this.certain.add(key);
    if (isIn) {
      this.known.set(key, cur);
      const type = known !== undefined ? 'MODIFIED' : wasIn ? 'MODIFIED' : !isCertain && hint === 'MODIFIED' ? 'MODIFIED' : 'ADDED';
      this.emit({ type, object: cur });
    } else if (wasIn || (!isCertain && hint === 'DELETED' && prev !== undefined)) {
      this.known.delete(key);
      this.emit({ type: 'DELETED', object: known ?? (prev as T) });
    }
  }

  /** The backend says every change up to `at` has been delivered (Kubernetes BOOKMARK). */
  bookmark(at: bigint): void {
    if (at <= this.lastRevision) return;
    this.lastRevision = at;
    this.keysAtLast.clear();
    this.completeAtLast = true;
  }

  /** Full state at `at` (initial list or relist after compaction): emit differences, then SYNCED. */
  resync(items: T[], at: bigint): void {
    const seen = new Set<string>();
    for (const o of items) {
      if (!this.filter(o)) continue;
      const k = this.keyFn(o);
      seen.add(k);
      const known = this.known.get(k);
      this.known.set(k, o);
      if (known === undefined) this.emit({ type: 'ADDED', object: o });
      else if (known.metadata.resourceVersion !== o.metadata.resourceVersion) this.emit({ type: 'MODIFIED', object: o });
    }
    for (const [k, o] of [...this.known]) {
      if (!seen.has(k)) {
        this.known.delete(k);
        this.emit({ type: 'DELETED', object: o });
      }
    }
    this.allCertain = true;
    this.certain.clear();
    if (at >= this.lastRevision) {
      this.lastRevision = at;
      this.keysAtLast.clear();
      this.completeAtLast = true;
    }
    this.emit({ type: 'SYNCED', revision: this.lastRevision.toString() });
  }
}

/** Exponential backoff delays for reconnect loops: 100 ms doubling up to `max`. */
export function backoffDelay(attempt: number, max = 2000): number {
  return Math.min(max, 100 * 2 ** Math.min(attempt, 10));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** `fn()` bounded by `timeoutMs`: past it, UnavailableError for `server` naming `what`. */
export async function withDeadline<T>(server: string, what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UnavailableError(server, new Error(`${what}: no answer within ${timeoutMs} ms`))), timeoutMs);
  });
  try {
    return await Promise.race([fn(), bound]);
  } finally {
    clearTimeout(timer);
  }
}
