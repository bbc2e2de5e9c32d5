/**
 * The datastore contract every component uses. Three backends implement it (memory, etcdv3,
 * kubernetes) and one contract test suite runs against all three.
 *
 * Objects go in and come out as full resources (`Resource`): the backend sets
 * `metadata.resourceVersion` (and uid/creationTimestamp on create). Updates are compare-and-swap on
 * `metadata.resourceVersion`.
 */
import type { Resource } from '../api/meta.js';
import { TabbyError } from '../lib/errors.js';

export interface ListOptions {
  /** Only for namespaced kinds; omitted = all namespaces. */
  namespace?: string;
  /** Kubernetes label selector syntax (`a=b,c!=d,e in (x,y),!f`). */
  labelSelector?: string;
  /** Only names that start with this prefix. */
  namePrefix?: string;
}

export interface ListResult<T extends Resource = Resource> {
  items: T[];
  /** The store revision the list was taken at; pass it to watch() to get every later change. */
  revision: string;
}

export interface DeleteOptions {
  namespace?: string;
  /** Precondition: delete only if the stored object still has this resourceVersion (else ConflictError). */
  resourceVersion?: string;
}

export type WatchEvent<T extends Resource = Resource> =
  | { type: 'ADDED' | 'MODIFIED'; object: T }
  /** `object` is the last state seen before deletion. */
  | { type: 'DELETED'; object: T }
  /** The watcher's view is complete up to `revision` (sent after the initial list and after every relist). */
  | { type: 'SYNCED'; revision: string }
  /** Connection trouble; the watcher keeps retrying by itself. Informational only. */
  | { type: 'ERROR'; error: Error };

export interface WatchOptions extends ListOptions {
  /**
   * Start after this revision (from a ListResult). Omitted: the watcher lists first and emits every
   * existing object as ADDED, then SYNCED, then changes. When the revision is compacted/expired
   * (etcd compaction, Kubernetes 410 Gone) the watcher relists and emits only the differences against
   * what it already delivered, so consumers never lose or duplicate an event.
   * With a revision no SYNCED is sent at the start (the caller's list is the initial state); one
   * follows every relist. Objects entering/leaving the labelSelector arrive as ADDED/DELETED.
   */
  revision?: string;
}

export interface Watcher {
  stop(): Promise<void>;
}

/**
 * One operation of an atomic multi-object commit (`Datastore.commit`).
 * - `create`: fails with AlreadyExistsError when the name is taken.
 * - `update`: CAS on `object.metadata.resourceVersion` (ConflictError when stale, NotFoundError when gone).
 * - `delete`: with an optional resourceVersion precondition (NotFoundError / ConflictError).
 * - `check`: writes nothing; asserts the object is still at `resourceVersion` (ConflictError when it
 *   changed, NotFoundError when gone), or with `resourceVersion: null` that it does not exist
 *   (AlreadyExistsError). Lets a caller validate cached reads inside the same atomic step.
 */
export type CommitOp =
  | { op: 'create'; object: Resource }
  | { op: 'update'; object: Resource }
  | { op: 'delete'; kind: string; name: string; namespace?: string; resourceVersion?: string }
  | { op: 'check'; kind: string; name: string; namespace?: string; resourceVersion: string | null };

export interface CommitResult {
  /** Per op, in order: the stored object (create/update, with its new resourceVersion); undefined for delete/check. */
  objects: Array<Resource | undefined>;
  /** The store revision of the commit. */
  revision: string;
}

export interface Datastore {
  /** Backend name for logs and errors: "memory", "etcdv3", "kubernetes". */
  readonly type: string;
  get<T extends Resource = Resource>(kind: string, name: string, namespace?: string): Promise<T>;
  list<T extends Resource = Resource>(kind: string, opts?: ListOptions): Promise<ListResult<T>>;
  /** Fails with AlreadyExistsError when the name is taken. */
  create<T extends Resource>(obj: T): Promise<T>;
  /** CAS on obj.metadata.resourceVersion (required): ConflictError when stale, NotFoundError when gone. */
  update<T extends Resource>(obj: T): Promise<T>;
  /** NotFoundError when absent; ConflictError when the resourceVersion precondition fails. Returns the deleted object. */
  delete<T extends Resource = Resource>(kind: string, name: string, opts?: DeleteOptions): Promise<T>;
  watch<T extends Resource = Resource>(kind: string, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): Watcher;
  /**
   * Optional (memory and etcdv3 have it, kubernetes does not): apply every op or none, in one
   * round trip. On failure nothing is written and the typed error of the first failing op is thrown
   * (AlreadyExistsError / ConflictError / NotFoundError) with `opIndex` set to that op's index.
   * One object may appear in at most one op (InvalidObjectError otherwise).
   */
  commit?(ops: readonly CommitOp[]): Promise<CommitResult>;
  close(): Promise<void>;
}

/** True when the store can apply multi-object atomic commits. */
export function supportsCommit(ds: Datastore): ds is Datastore & { commit(ops: readonly CommitOp[]): Promise<CommitResult> } {
  return typeof ds.commit === 'function';
}

export class DatastoreError extends TabbyError {
  /** Set by `Datastore.commit` failures: the index of the op that failed. */
  opIndex?: number;
}

/** The operation is not available on this backend/transport. */
export class UnsupportedError extends DatastoreError {
  constructor(what: string, hint?: string) {
    super('Unsupported', `${what} is not supported`, hint === undefined ? undefined : { hint });
  }
}

export class NotFoundError extends DatastoreError {
  constructor(kind: string, name: string) {
    super('NotFound', `${kind} ${JSON.stringify(name)} not found`);
  }
}

export class AlreadyExistsError extends DatastoreError {
  constructor(kind: string, name: string) {
    super('AlreadyExists', `${kind} ${JSON.stringify(name)} already exists`);
  }
}

/** Compare-and-swap lost: someone else wrote the object since it was read. Re-read and retry. */
export class ConflictError extends DatastoreError {
  constructor(kind: string, name: string, detail?: string) {
    super('Conflict', `${kind} ${JSON.stringify(name)} was modified concurrently${detail ? `: ${detail}` : ''}`, {
      hint: 're-read the object and retry',
    });
  }
}

/** The datastore could not be reached within the bounded time. Names the endpoint. */
export class UnavailableError extends DatastoreError {
  constructor(endpoint: string, cause?: unknown) {
    super('Unavailable', `datastore at ${endpoint} is unreachable`, {
      hint: 'check that the datastore is running and the endpoint/credentials are right',
      cause,
    });
  }
}

/** Bad configuration (unknown datastore type, missing endpoints, unreadable kubeconfig). */
export class DatastoreConfigError extends DatastoreError {
  constructor(message: string, hint?: string) {
    super('DatastoreConfig', message, hint === undefined ? undefined : { hint });
  }
}
