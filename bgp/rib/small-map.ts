/**
 * A Map for the common case of one entry: most prefixes have one path and one advertised entry,
 * and a JS Map costs far more than a field or two. Grows into a real Map from the second key.
 * Implements the subset of Map the RIB uses. Values must not be `undefined` (it marks "empty").
 */
export class SmallMap<K, V> implements Iterable<[K, V]> {
  private k: K | undefined = undefined;
  private v: V | undefined = undefined;
  private map: Map<K, V> | undefined = undefined;

  get size(): number {
    return this.map ? this.map.size : this.v !== undefined ? 1 : 0;
  }

  /** The value when there is exactly one entry held inline (no Map), else undefined. */
  one(): V | undefined {
    return this.v;
  }

  get(key: K): V | undefined {
    if (this.map) return this.map.get(key);
    return this.k === key ? this.v : undefined;
  }

  has(key: K): boolean {
    if (this.map) return this.map.has(key);
    return this.v !== undefined && this.k === key;
  }

  set(key: K, value: V): this {
    if (this.map) this.map.set(key, value);
    else if (this.v === undefined || this.k === key) {
      this.k = key;
      this.v = value;
    } else {
      this.map = new Map([[this.k as K, this.v]]);
      this.map.set(key, value);
      this.k = undefined;
      this.v = undefined;
    }
    return this;
  }

  delete(key: K): boolean {
    if (this.map) return this.map.delete(key);
    if (this.v === undefined || this.k !== key) return false;
    this.k = undefined;
    this.v = undefined;
    return true;
  }

  *entries(): IterableIterator<[K, V]> {
    if (this.map) yield* this.map.entries();
    else if (this.v !== undefined) yield [this.k as K, this.v];
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}
