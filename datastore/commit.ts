/**
 * Backend-independent part of `Datastore.commit` (multi-object atomic commit): op normalisation,
 * the duplicate-object rule, and the precondition of each op against the stored resourceVersion —
 * used by memory to validate and by etcd to explain a failed transaction.
 */
import type { KindInfo } from '../api/kinds.js';
import type { Resource } from '../api/meta.js';
import { InvalidObjectError, effectiveNamespace, normalizeForWrite, objectKey, resolveKind } from './common.js';
import type { CommitOp, CommitResult } from './types.js';
import { AlreadyExistsError, ConflictError, DatastoreError, NotFoundError } from './types.js';

export interface PreparedOp {
  op: CommitOp['op'];
  info: KindInfo;
  name: string;
  namespace: string | undefined;
  /** `<ns>/<name>` or `<name>` inside the kind. */
  key: string;
  /** create/update: the normalised copy to store (create: without resourceVersion). */
  object?: Resource;
  /** The expected stored resourceVersion: null = must be absent, undefined = any (delete without precondition). */
  resourceVersion?: string | null;
}

export function prepareCommit(ops: readonly CommitOp[]): PreparedOp[] {
  const seen = new Set<string>();
  return ops.map((op, i) => {
    let p: PreparedOp;
    if (op.op === 'create' || op.op === 'update') {
      const { info, obj } = normalizeForWrite(op.object);
      const rv = obj.metadata.resourceVersion;
      if (op.op === 'create') delete obj.metadata.resourceVersion;
      p = {
        op: op.op,
        info,
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        key: objectKey(info, obj.metadata.name, obj.metadata.namespace),
        object: obj,
        resourceVersion: op.op === 'create' ? null : (rv ?? ''),
      };
    } else {
      const info = resolveKind(op.kind);
      const namespace = effectiveNamespace(info, op.namespace);
      p = { op: op.op, info, name: op.name, namespace, key: objectKey(info, op.name, namespace) };
      if (op.resourceVersion !== undefined) p.resourceVersion = op.resourceVersion;
    }
    const id = `${p.info.plural}/${p.key}`;
    if (seen.has(id)) throw tagged(i, new InvalidObjectError(`commit names ${p.info.kind} ${JSON.stringify(p.name)} twice`));
    seen.add(id);
    return p;
  });
}

/** Does the op's precondition hold against the stored resourceVersion (undefined = absent)? The error if not. */
export function precondition(p: PreparedOp, stored: string | undefined): DatastoreError | undefined {
  if (p.resourceVersion === null) return stored === undefined ? undefined : new AlreadyExistsError(p.info.kind, p.name);
  if (stored === undefined) return new NotFoundError(p.info.kind, p.name);
  if (p.op === 'update' && p.resourceVersion === '') return new ConflictError(p.info.kind, p.name, 'update needs metadata.resourceVersion');
  if (p.resourceVersion !== undefined && p.resourceVersion !== stored) {
    return new ConflictError(p.info.kind, p.name, `resourceVersion ${p.resourceVersion} is stale (now ${stored})`);
  }
  return undefined;
}

/** Mark a datastore error with the index of the commit op that caused it. */
export function tagged<E>(i: number, err: E): E {
  if (err instanceof DatastoreError) err.opIndex = i;
  return err;
}

/** The error of a failed transaction: the first op whose precondition fails against the stored versions read in it. */
export function commitFailure(prepared: readonly PreparedOp[], storedRv: (i: number) => string | undefined): DatastoreError {
  for (const [i, p] of prepared.entries()) {
    const err = precondition(p, storedRv(i));
    if (err) return tagged(i, err);
  }
  return new ConflictError(prepared[0]!.info.kind, prepared[0]!.name, 'commit lost a race; re-read and retry');
}

/** The result of a successful commit at `revision`. */
export function committed(prepared: readonly PreparedOp[], revision: string): CommitResult {
  const objects = prepared.map((p) => {
    if (!p.object || p.op === 'check' || p.op === 'delete') return undefined;
    p.object.metadata.resourceVersion = revision;
    return p.object;
  });
  return { objects, revision };
}
