/**
 * DeltaTracker: desired vs dataplane maps and the difference between them (after Calico's
 * deltatracker). "Pending updates" = desired keys missing from the dataplane or with a different
 * value; "pending deletions" = dataplane keys that are not desired. Every reconciler in felix/ has
 * this shape: set desired (memory only), learn the dataplane (dump), apply the pending sets.
 */
export class DeltaTracker<K, V> {
  private want = new Map<K, V>();
  private have = new Map<K, V>();
  constructor(private readonly equal: (a: V, b: V) => boolean) {}

  desired(): ReadonlyMap<K, V> {
    return this.want;
  }
  dataplane(): ReadonlyMap<K, V> {
    return this.have;
  }
  setDesired(next: Map<K, V>): void {
    this.want = next;
  }
  setDataplane(next: Map<K, V>): void {
    this.have = next;
  }
  /** Record that the dataplane now holds `v` under `k` (after a successful write). */
  dataplaneSet(k: K, v: V): void {
    this.have.set(k, v);
  }
  dataplaneDelete(k: K): void {
    this.have.delete(k);
  }

  *pendingUpdates(): Generator<[K, V]> {
    for (const [k, v] of this.want) {
      const h = this.have.get(k);
      if (h === undefined || !this.equal(v, h)) yield [k, v];
    }
  }
  *pendingDeletions(): Generator<[K, V]> {
    for (const [k, v] of this.have) if (!this.want.has(k)) yield [k, v];
  }
  /** True when the dataplane matches the desired state. */
  inSync(): boolean {
    return this.pendingUpdates().next().done === true && this.pendingDeletions().next().done === true;
  }
}
