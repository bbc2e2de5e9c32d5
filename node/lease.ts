/**
 * Leader election through the datastore: one lease record (holder, acquire/renew times, duration,
 * transitions — coordination.k8s.io/v1 Lease field names) written with compare-and-swap.
 *
 * Where it is stored: as a JSON annotation `tabby.projectcalico.org/lease.<name>` on the
 * ClusterInformation `default` singleton (tabby-node's start-up creates it). That works on every
 * backend through the existing Datastore CRUD (CAS on resourceVersion), so the Datastore interface
 * did not change; `LeaseStore` is the seam for another home (e.g. a coordination.k8s.io Lease).
 *
 * Expiry follows client-go: a follower judges a lease by its own clock — the lease is stale when the
 * record has not changed for `leaseDurationSeconds` since this process first saw that version — so
 * clock skew between nodes does not matter. A holder that cannot renew steps down at once, and stops
 * counting itself leader once its last renewal is a lease duration old (a hung request).
 * Exclusivity is best effort (as any lease); GC safety does not depend on it: every write is CAS.
 */
import type { Logger } from '../lib/log.js';
import { errorMessage, TabbyError } from '../lib/errors.js';
import { silentLogger } from '../lib/log.js';
import type { ClusterInformation } from '../api/types.js';
import { AlreadyExistsError, ConflictError, NotFoundError, type Datastore } from '../datastore/types.js';

export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

export interface StoredLease {
  record: LeaseRecord;
  /** CAS token (the storing object's resourceVersion). */
  version: string;
}

/** Where a lease lives. Writes are CAS: ConflictError when `version` is stale. */
export interface LeaseStore {
  get(): Promise<StoredLease | undefined>;
  /** Create (prev undefined → AlreadyExistsError/ConflictError when someone was faster) or CAS-replace. */
  put(record: LeaseRecord, prev: StoredLease | undefined): Promise<StoredLease>;
}

export class LeaseError extends TabbyError {}

export const LEASE_ANNOTATION_PREFIX = 'tabby.projectcalico.org/lease.';

function parseRecord(raw: string | undefined): LeaseRecord | undefined {
  if (!raw) return undefined;
  try {
    const r = JSON.parse(raw) as Partial<LeaseRecord>;
    if (typeof r.holderIdentity !== 'string' || typeof r.leaseDurationSeconds !== 'number' || typeof r.renewTime !== 'string') return undefined;
    return { holderIdentity: r.holderIdentity, leaseDurationSeconds: r.leaseDurationSeconds, renewTime: r.renewTime, acquireTime: r.acquireTime ?? r.renewTime, leaseTransitions: r.leaseTransitions ?? 0 };
  } catch {
    return undefined; // garbage is treated as no lease: it is taken over by CAS
  }
}

/** The lease `name` as an annotation on ClusterInformation `default`. */
export function clusterInformationLeaseStore(ds: Datastore, name: string): LeaseStore {
  const key = `${LEASE_ANNOTATION_PREFIX}${name}`;
  const read = async (): Promise<ClusterInformation> => {
    try {
      return await ds.get<ClusterInformation>('ClusterInformation', 'default');
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new LeaseError('LeaseHomeMissing', 'ClusterInformation "default" does not exist yet; it holds the leader lease', {
          hint: 'tabby-node start-up creates it; wait for one node to start',
          cause: err,
        });
      }
      throw err;
    }
  };
  return {
    async get() {
      const ci = await read();
      const record = parseRecord(ci.metadata.annotations?.[key]);
      return record ? { record, version: ci.metadata.resourceVersion ?? '' } : undefined;
    },
    async put(record, prev) {
      const ci = await read();
      const cur = parseRecord(ci.metadata.annotations?.[key]);
      // The lease's version is the object's: any write to ClusterInformation since `prev` is a conflict.
      if (prev ? prev.version !== ci.metadata.resourceVersion : cur !== undefined) throw new ConflictError('ClusterInformation', 'default', `lease ${name} changed`);
      const next: ClusterInformation = { ...ci, metadata: { ...ci.metadata, annotations: { ...(ci.metadata.annotations ?? {}), [key]: JSON.stringify(record) } } };
      const saved = await ds.update(next);
      return { record, version: saved.metadata.resourceVersion ?? '' };
    },
  };
}

export interface LeaderElectorOptions {
  store: LeaseStore;
  identity: string;
  leaseDurationMs: number;
  now?: () => number;
  log?: Logger;
  onChange?: (leader: boolean) => void;
}

/** One step of the election per `tick()`; the caller runs it every renew period (≤ duration / 3). */
export class LeaderElector {
  private leader = false;
  private renewedAt = 0;
  /** The last lease version seen and when (by our clock) it was first seen. */
  private observed: { version: string; at: number } | undefined;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? silentLogger();
  }

  /**
   * True while the last successful renewal is younger than the lease duration: a holder whose renewal
   * hangs stops counting itself leader no later than any follower may take over (it took its
   * timestamp before writing; followers start counting after they see the write).
   */
  isLeader(): boolean {
    return this.leader && this.now() - this.renewedAt < this.opts.leaseDurationMs;
  }

  private set(leader: boolean, why: string): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.log.info({ identity: this.opts.identity, why }, leader ? 'became the leader' : 'no longer the leader');
    this.opts.onChange?.(leader);
  }

  /** Try to acquire or renew. Returns whether this process leads now. Never throws. */
  async tick(): Promise<boolean> {
    const now = this.now();
    const me = this.opts.identity;
    try {
      const cur = await this.opts.store.get();
      // Start counting from after the read returned: a follower never expires a lease early.
      if (cur && cur.version !== this.observed?.version) this.observed = { version: cur.version, at: this.now() };
      const mine = cur?.record.holderIdentity === me;
      const durMs = (cur?.record.leaseDurationSeconds ?? 0) * 1000;
      const stale = !cur || cur.record.holderIdentity === '' || now - this.observed!.at >= durMs;
      if (!mine && !stale) {
        this.set(false, `held by ${cur!.record.holderIdentity}`);
        return false;
      }
      const stamp = new Date(now).toISOString();
      const record: LeaseRecord = mine
        ? { ...cur!.record, renewTime: stamp, leaseDurationSeconds: this.opts.leaseDurationMs / 1000 }
        : {
            holderIdentity: me,
            leaseDurationSeconds: this.opts.leaseDurationMs / 1000,
            acquireTime: stamp,
            renewTime: stamp,
            leaseTransitions: (cur?.record.leaseTransitions ?? 0) + (cur ? 1 : 0),
          };
      const saved = await this.opts.store.put(record, cur);
      this.observed = { version: saved.version, at: now };
      this.renewedAt = now;
      this.set(true, mine ? 'renewed' : cur ? `took over from ${cur.record.holderIdentity} (stale)` : 'acquired');
      return true;
    } catch (err) {
      const lost = err instanceof ConflictError || err instanceof AlreadyExistsError;
      if (!lost) this.log.warn({ err: errorMessage(err) }, 'leader lease: datastore trouble; not leading until it works again');
      this.set(false, lost ? 'lost the lease race' : 'cannot reach the lease');
      return false;
    }
  }

  /** Give the lease up (holder cleared) so another process takes over without waiting. */
  async release(): Promise<void> {
    if (!this.leader) return;
    this.set(false, 'released');
    try {
      const cur = await this.opts.store.get();
      if (cur?.record.holderIdentity !== this.opts.identity) return;
      await this.opts.store.put({ ...cur.record, holderIdentity: '', renewTime: new Date(this.now()).toISOString() }, cur);
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'could not release the leader lease; it expires by itself');
    }
  }
}
