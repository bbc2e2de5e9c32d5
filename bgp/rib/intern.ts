/**
 * Attribute interning: every distinct set of path attributes exists once, frozen, and is shared by
 * every route that carries it (1M routes from one peer usually share a handful of objects). The
 * stable key doubles as the hash used by update groups to batch NLRI that share attributes.
 */
import type { PathAttributes, RawAttribute } from '../types.js';

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function rawKey(u: RawAttribute): string {
  return `${u.type}/${u.flags}/${hex(u.value)}`;
}

/**
 * A stable string for an attribute set: the same attributes always give the same key, whatever the
 * property order of the object. Communities keep their order (it is what goes on the wire).
 */
export function attrKey(a: PathAttributes): string {
  const parts: unknown[] = [
    a.origin ?? null,
    a.asPath ? a.asPath.map((s) => [s.type, s.asns]) : null,
    a.nextHop ?? null,
    a.med ?? null,
    a.localPref ?? null,
    a.atomicAggregate ? 1 : 0,
    a.aggregator ? [a.aggregator.asn, a.aggregator.address] : null,
    a.communities ?? null,
    a.originatorId ?? null,
    a.clusterList ?? null,
    a.extCommunities ?? null,
    a.largeCommunities ?? null,
    a.unknown ? a.unknown.map(rawKey) : null,
  ];
  if (a.priority !== undefined) parts.push(a.priority);
  return JSON.stringify(parts);
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    // Uint8Array cannot be frozen (it has elements); it is never mutated by the RIB.
    if (ArrayBuffer.isView(o)) return o;
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/** Copy without undefined-valued keys, so `{med: undefined}` and `{}` intern to one object. */
function compact(a: PathAttributes): PathAttributes {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = v;
  return out as PathAttributes;
}

interface Entry {
  attrs: Readonly<PathAttributes>;
  refs: number;
}

export class AttrInterner {
  private readonly byKey = new Map<string, Entry>();
  private readonly keyOf = new WeakMap<object, string>();
  /**
   * The last not-yet-interned object and its key: every NLRI of one UPDATE shares one decoded
   * attribute object, so a table transfer computes the key once per UPDATE, not once per prefix.
   * (Callers do not mutate an attribute object between two intern() calls.)
   */
  private lastRaw: object | undefined;
  private lastRawKey = '';

  /** The shared frozen object for these attributes; takes one reference. */
  intern(a: PathAttributes): Readonly<PathAttributes> {
    const known = this.keyOf.get(a);
    let key = known;
    if (key === undefined) {
      if (a === this.lastRaw) key = this.lastRawKey;
      else {
        key = attrKey(a);
        this.lastRaw = a;
        this.lastRawKey = key;
      }
    }
    let e = this.byKey.get(key);
    if (!e) {
      // An object we interned before (and since released) is reused as is: it is already frozen.
      const attrs = known !== undefined ? a : deepFreeze(compact(a));
      e = { attrs, refs: 0 };
      this.byKey.set(key, e);
      this.keyOf.set(attrs, key);
    }
    e.refs++;
    return e.attrs;
  }

  /** Drop one reference taken by intern(); the object is forgotten when none is left. */
  release(a: Readonly<PathAttributes>): void {
    const key = this.keyOf.get(a);
    if (key === undefined) return;
    const e = this.byKey.get(key);
    if (!e || e.attrs !== a) return;
    if (--e.refs <= 0) this.byKey.delete(key);
  }

  /** The key of an interned object (cheap: cached), or a computed one for a foreign object. */
  key(a: Readonly<PathAttributes>): string {
    return this.keyOf.get(a) ?? attrKey(a);
  }

  get size(): number {
    return this.byKey.size;
  }
}
