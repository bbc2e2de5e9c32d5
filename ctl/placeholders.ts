/**
 * TEMPORARY stand-ins for the api and datastore branches' functions until they are merged.
 * Deleted after `git merge api datastore`.
 */
import type { Resource } from '../api/meta.js';
import { TabbyError } from '../lib/errors.js';

export class ValidationError extends TabbyError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super('Validation', problems.join('; '));
    this.problems = problems;
  }
}

export function applyDefaults<T extends Resource>(obj: T): T {
  return obj;
}

export function validateResource(obj: unknown): Resource {
  const r = obj as Resource;
  if (r.kind === 'IPPool') {
    const cidr = (r.spec as { cidr?: unknown } | undefined)?.cidr;
    if (typeof cidr !== 'string') throw new ValidationError(['spec.cidr: required']);
    if (cidr.endsWith('.1/16')) throw new ValidationError([`spec.cidr: ${cidr} is not a network address`]);
  }
  return r;
}

export function validateUpdate(old: Resource, next: Resource): void {
  if (old.kind === 'IPPool' && (old.spec as { cidr?: string }).cidr !== (next.spec as { cidr?: string }).cidr) {
    throw new ValidationError(['spec.cidr: is immutable']);
  }
}

export function validatePoolOverlap(pool: Resource, existing: readonly Resource[]): void {
  const cidr = (pool.spec as { cidr?: string }).cidr;
  const other = existing.find((p) => (p.spec as { cidr?: string }).cidr === cidr);
  if (other) throw new ValidationError([`spec.cidr: ${cidr} overlaps with IPPool ${other.metadata.name}`]);
}
