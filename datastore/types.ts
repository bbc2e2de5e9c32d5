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
  close(): Promise<void>;
}

export class DatastoreError extends TabbyError {}

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
