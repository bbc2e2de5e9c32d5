/**
 * A Map for the common case of one entry: most prefixes have one path and one advertised entry,
 * and a JS Map costs far more than a field or two. Grows into a real Map from the second key.
 * Implements the subset of Map the RIB uses.
 */
export class SmallMap<K, V> implements Iterable<[K, V]> {
  private k: K | undefined;
  private v: V | undefined;
  private one = false;
  private map: Map<K, V> | undefined;

  get size(): number {
    return this.map ? this.map.size : this.one ? 1 : 0;
  }

  get(key: K): V | undefined {
    if (this.map) return this.map.get(key);
    return this.one && this.k === key ? this.v : undefined;
  }

  has(key: K): boolean {
    if (this.map) return this.map.has(key);
    return this.one && this.k === key;
  }

  set(key: K, value: V): this {
    if (this.map) this.map.set(key, value);
    else if (!this.one || this.k === key) {
      this.k = key;
      this.v = value;
      this.one = true;
    } else {
      this.map = new Map([[this.k as K, this.v as V]]);
      this.map.set(key, value);
      this.k = undefined;
      this.v = undefined;
      this.one = false;
    }
    return this;
  }

  delete(key: K): boolean {
    if (this.map) return this.map.delete(key);
    if (!this.one || this.k !== key) return false;
    this.one = false;
    this.k = undefined;
    this.v = undefined;
    return true;
  }

  *entries(): IterableIterator<[K, V]> {
    if (this.map) yield* this.map.entries();
    else if (this.one) yield [this.k as K, this.v as V];
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}
