/**
 * The resource actions behind create/apply/replace/delete/validate/label/patch: defaults, validation
 * (schema, pool overlap, immutable fields) and compare-and-swap writes against a Datastore.
 * Each function handles one resource and throws a typed error with a one-line reason.
 */
import type { Resource } from '../api/meta.js';
import type { Datastore } from '../datastore/types.js';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../datastore/types.js';
import { errorMessage } from '../lib/errors.js';
import { CtlError } from './context.js';
import type { IPPool } from '../api/types.js';
import { ValidationError, validatePoolOverlap, validateResource, validateUpdate } from '../api/validate.js';

/** How many times apply/label/patch re-read and retry after losing a compare-and-swap race. */
export const CAS_ATTEMPTS = 5;

/** One line for a failed action: validation problems joined, typed errors described. */
export function reason(e: unknown): string {
  if (e instanceof ValidationError) return e.problems.join('; ');
  return errorMessage(e);
}

/** Defaults + schema/semantic validation of a manifest object; returns a new object to store. */
export function prepare(obj: Resource): Resource {
  return validateResource(obj);
}

/** Pools in `pools` must not overlap `obj` (when it is a pool); the pool's own name is skipped. */
export function checkPoolOverlap(obj: Resource, pools: readonly Resource[]): void {
  if (obj.kind === 'IPPool') validatePoolOverlap(obj as IPPool, pools as readonly IPPool[]);
}

/** Pools must not overlap other pools (excluding the pool's own previous version). */
async function checkOverlap(ds: Datastore, obj: Resource): Promise<void> {
  if (obj.kind !== 'IPPool') return;
  const { items } = await ds.list('IPPool');
  checkPoolOverlap(obj, items);
}

/** Keep the identity the store gave the object (uid, creation time) when replacing its content. */
function carryIdentity(current: Resource, next: Resource): Resource {
  const out = structuredClone(next);
  out.metadata = { ...out.metadata };
  if (current.metadata.uid !== undefined) out.metadata.uid = current.metadata.uid;
  if (current.metadata.creationTimestamp !== undefined) out.metadata.creationTimestamp = current.metadata.creationTimestamp;
  out.metadata.resourceVersion = current.metadata.resourceVersion;
  if (out.status === undefined && current.status !== undefined) out.status = current.status;
  return out;
}

async function getOrUndefined(ds: Datastore, kind: string, name: string, namespace?: string): Promise<Resource | undefined> {
  try {
    return await ds.get(kind, name, namespace);
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

export type WriteOutcome = 'written' | 'skipped';

export async function createResource(ds: Datastore, obj: Resource, opts: { skipExists?: boolean } = {}): Promise<WriteOutcome> {
  const next = prepare(obj);
  // The store assigns identity; values copied from another object's `get -o yaml` are dropped.
  delete next.metadata.resourceVersion;
  delete next.metadata.uid;
  delete next.metadata.creationTimestamp;
  try {
    await checkOverlap(ds, next);
    await ds.create(next);
    return 'written';
  } catch (e) {
    if (opts.skipExists && e instanceof AlreadyExistsError) return 'skipped';
    throw e;
  }
}

/** Update an existing object; a manifest resourceVersion makes it a strict CAS, else re-read on conflict. */
async function updateFrom(ds: Datastore, next: Resource, current: Resource): Promise<void> {
  const merged = carryIdentity(current, next);
  if (next.metadata.resourceVersion) merged.metadata.resourceVersion = next.metadata.resourceVersion;
  const checked = validateUpdate(current, merged);
  await checkOverlap(ds, checked);
  await ds.update(checked);
}

export async function replaceResource(ds: Datastore, obj: Resource): Promise<void> {
  const next = prepare(obj);
  const strict = Boolean(next.metadata.resourceVersion);
  for (let attempt = 1; ; attempt++) {
    const current = await ds.get(next.kind, next.metadata.name, next.metadata.namespace);
    try {
      await updateFrom(ds, next, current);
      return;
    } catch (e) {
      if (!(e instanceof ConflictError) || strict || attempt >= CAS_ATTEMPTS) throw e;
    }
  }
}

export async function applyResource(ds: Datastore, obj: Resource): Promise<void> {
  const next = prepare(obj);
  const strict = Boolean(next.metadata.resourceVersion);
  for (let attempt = 1; ; attempt++) {
    try {
      const current = await getOrUndefined(ds, next.kind, next.metadata.name, next.metadata.namespace);
      if (current === undefined) {
        if (strict) throw new NotFoundError(next.kind, next.metadata.name);
        await checkOverlap(ds, next);
        await ds.create(next);
      } else {
        await updateFrom(ds, next, current);
      }
      return;
    } catch (e) {
      const race = e instanceof ConflictError || e instanceof AlreadyExistsError || (e instanceof NotFoundError && !strict);
      if (!race || strict || attempt >= CAS_ATTEMPTS) throw e;
    }
  }
}

export async function deleteResource(
  ds: Datastore,
  kind: string,
  name: string,
  opts: { skipNotExists?: boolean; namespace?: string; resourceVersion?: string } = {},
): Promise<WriteOutcome> {
  try {
    const del: { namespace?: string; resourceVersion?: string } = {};
    if (opts.namespace !== undefined) del.namespace = opts.namespace;
    if (opts.resourceVersion) del.resourceVersion = opts.resourceVersion;
    await ds.delete(kind, name, del);
    return 'written';
  } catch (e) {
    if (opts.skipNotExists && e instanceof NotFoundError) return 'skipped';
    if (e instanceof NotFoundError) throw new CtlError(`resource does not exist: ${kind}(${name})`);
    throw e;
  }
}

/**
 * Read-modify-write with CAS retries: `change` gets a copy of the current object and returns the new
 * one (or throws a one-line CtlError). Used by label and patch.
 */
export async function modifyResource(
  ds: Datastore,
  kind: string,
  name: string,
  change: (current: Resource) => Resource,
  namespace?: string,
): Promise<Resource> {
  for (let attempt = 1; ; attempt++) {
    const current = await getOrUndefined(ds, kind, name, namespace);
    if (current === undefined) throw new CtlError(`resource does not exist: ${kind}(${name})`);
    const next = prepare(change(structuredClone(current)));
    next.metadata.resourceVersion = current.metadata.resourceVersion;
    try {
      const checked = validateUpdate(current, next);
      await checkOverlap(ds, checked);
      return await ds.update(checked);
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= CAS_ATTEMPTS) throw e;
    }
  }
}
