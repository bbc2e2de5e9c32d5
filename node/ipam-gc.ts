/**
 * IPAM garbage collection in tabby-node: every agent runs a LeaderElector on one datastore lease;
 * only the leader runs GC passes. A pass reads the IPAM objects, then the owners (WorkloadEndpoints
 * and Nodes, or pods on Kubernetes), plans with ipam/gc.ts planGc and applies the plan through the
 * allocator's own CAS release functions:
 * - allocations: `releaseIps([{ip, sequenceNumber}])`, one at a time, so an address re-allocated
 *   since the snapshot is refused (BadSequenceNumber → skipped, never freed);
 * - affinities of deleted nodes: `releaseAffinity` (empty block deleted, otherwise left unaffine);
 * - leftover tunnel handles of deleted nodes: `reconcileHandle` (deleted when nothing is left).
 * An error reading the IPAM objects or the owners — or an owner snapshot without this agent's own
 * Node, a sign of reading the wrong data — aborts the pass before anything is written (warn log,
 * `tabby_ipam_gc_errors_total{stage}`); observations are kept for the next pass.
 */
import type { Logger } from '../lib/log.js';
import { errorMessage, TabbyError } from '../lib/errors.js';
import { silentLogger } from '../lib/log.js';
import type { Datastore } from '../datastore/types.js';
import type { Node, WorkloadEndpoint } from '../api/types.js';
import type { Ipam } from '../ipam/ipam.js';
import { isIpamError } from '../ipam/errors.js';
import { type GcCandidate, type GcOwners, type GcReason, type PodLike, ownersFromPods, ownersFromWorkloadEndpoints, planGc } from '../ipam/gc.js';
import { clusterInformationLeaseStore, LeaderElector, type LeaseStore } from './lease.js';
import type { NodeMetrics } from './metrics.js';
import type { IpamGcConfig } from './config.js';

export { IPAM_GC_DEFAULTS, type IpamGcConfig } from './config.js';

/** The lease's name (ClusterInformation annotation `tabby.projectcalico.org/lease.ipam-gc`). */
export const IPAM_GC_LEASE = 'ipam-gc';

export type GcOwnerSource = () => Promise<GcOwners>;

export class IpamGcError extends TabbyError {}

/** etcd (and any backend): WorkloadEndpoints the CNI plugin records, and Node resources. */
export function workloadEndpointGcOwners(ds: Datastore): GcOwnerSource {
  return async () => {
    const [weps, nodes] = await Promise.all([ds.list<WorkloadEndpoint>('WorkloadEndpoint'), ds.list<Node>('Node')]);
    return ownersFromWorkloadEndpoints(weps.items, nodes.items.map((n) => n.metadata.name));
  };
}

/** Kubernetes: pods (from the core API, injected) judge workload allocations; Nodes from the datastore. */
export function podGcOwners(ds: Datastore, listPods: () => Promise<PodLike[]>): GcOwnerSource {
  return async () => {
    const [pods, nodes] = await Promise.all([listPods(), ds.list<Node>('Node')]);
    return ownersFromPods(pods, nodes.items.map((n) => n.metadata.name));
  };
}

export interface IpamGcDeps {
  ds: Datastore;
  ipam: Ipam;
  /** This agent's identity in the lease (the node name). */
  identity: string;
  log?: Logger;
  metrics?: NodeMetrics;
  /** Default: workloadEndpointGcOwners(ds). */
  owners?: GcOwnerSource;
  /** Default: clusterInformationLeaseStore(ds, IPAM_GC_LEASE). */
  leases?: LeaseStore;
  now?: () => number;
}

export interface GcPassResult {
  /** Ownerless allocations seen (waiting for their grace or released now). */
  candidates: number;
  released: Array<{ ip: string; handle: string | null; reason: GcReason }>;
  /** Due, but left alone: re-allocated since the snapshot, already free, or without a sequence number. */
  skipped: number;
  deletedNodes: string[];
  affinitiesReleased: number;
  handlesRemoved: number;
}

export class IpamGc {
  readonly elector: LeaderElector;
  private state: Map<string, number> = new Map();
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly owners: GcOwnerSource;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private lastPass: number | undefined;
  private stopped = false;

  constructor(
    readonly cfg: IpamGcConfig,
    private readonly deps: IpamGcDeps,
  ) {
    this.log = (deps.log ?? silentLogger()).child({ component: 'ipam-gc' });
    this.now = deps.now ?? Date.now;
    this.owners = deps.owners ?? workloadEndpointGcOwners(deps.ds);
    this.elector = new LeaderElector({
      store: deps.leases ?? clusterInformationLeaseStore(deps.ds, IPAM_GC_LEASE),
      identity: deps.identity,
      leaseDurationMs: cfg.leaseDurationMs,
      now: this.now,
      log: this.log,
      onChange: (leader) => {
        deps.metrics?.ipamGcLeader.set(leader ? 1 : 0);
        // Observations belong to one uninterrupted leadership: a new term starts from scratch.
        this.state = new Map();
        this.lastPass = undefined;
      },
    });
    deps.metrics?.ipamGcLeader.set(0);
  }

  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** Run tick() every third of the lease duration (and no slower than the pass interval). */
  start(): void {
    const period = Math.max(10, Math.min(this.cfg.leaseDurationMs / 3, this.cfg.intervalMs));
    const loop = (): void => {
      if (this.stopped) return;
      this.running = this.tick().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, period);
      });
    };
    this.log.info({ graceMs: this.cfg.graceMs, intervalMs: this.cfg.intervalMs, leaseDurationMs: this.cfg.leaseDurationMs }, 'IPAM garbage collection enabled');
    loop();
  }

  /** One election step, then a pass when leading and the interval has passed. Never throws. */
  async tick(): Promise<void> {
    if (!(await this.elector.tick()) || this.stopped) return;
    const now = this.now();
    if (this.lastPass !== undefined && now - this.lastPass < this.cfg.intervalMs) return;
    this.lastPass = now;
    try {
      await this.runPass();
    } catch (err) {
      // runPass already counted and logged it.
      this.log.debug({ err: errorMessage(err) }, 'pass ended early');
    }
  }

  /** One GC pass (does not check leadership: tick() does). Throws when the pass was aborted. */
  async runPass(): Promise<GcPassResult> {
    const m = this.deps.metrics;
    const { ipam } = this.deps;
    m?.ipamGcPasses.inc();
    const stage = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        m?.ipamGcErrors.inc({ stage: name });
        this.log.warn({ stage: name, err: errorMessage(err) }, name === 'owners' || name === 'ipam' ? 'GC pass aborted: cannot read the cluster state; nothing released' : 'GC pass aborted');
        throw err;
      }
    };
    // IPAM first, owners second: an owner created in between is seen (at worst one extra observation).
    const [blocks, affinities, handles] = await stage('ipam', () => Promise.all([ipam.store.listBlocks(), ipam.store.listAffinities(), ipam.store.listHandles()]));
    const owners = await stage('owners', async () => {
      const o = await this.owners();
      // This agent registered its own Node before starting the collector: an owner snapshot without
      // it is not the cluster we think it is (wrong prefix/namespace, a half-restored store). Stop.
      if (!o.nodes.has(this.deps.identity)) {
        throw new IpamGcError('OwnersIncomplete', `the owner snapshot lists ${o.nodes.size} Nodes but not this agent's own (${this.deps.identity})`, {
          hint: 'check that tabby-node registered its Node in the same datastore the collector reads',
        });
      }
      return o;
    });
    const plan = planGc({ blocks, affinities, handles, owners, previous: this.state, now: this.now(), graceMs: this.cfg.graceMs });
    this.state = plan.state;
    m?.ipamGcCandidates.set(plan.candidates.length);
    const result: GcPassResult = { candidates: plan.candidates.length, released: [], skipped: 0, deletedNodes: plan.deletedNodes, affinitiesReleased: 0, handlesRemoved: 0 };
    await stage('release', async () => {
      for (const c of plan.releases) {
        if (await this.release(c)) {
          result.released.push({ ip: c.ip, handle: c.handle, reason: c.reason });
          m?.ipamGcReclaimed.inc({ reason: c.reason });
        } else result.skipped++;
      }
      for (const a of plan.affinityReleases) {
        await ipam.releaseAffinity(a.node, a.cidr);
        result.affinitiesReleased++;
        m?.ipamGcReclaimed.inc({ reason: 'affinity-node-deleted' });
        this.log.info({ node: a.node, cidr: a.cidr }, 'released the block affinity of a deleted node');
      }
      for (const h of plan.handleCleanups) if (await ipam.reconcileHandle(h)) result.handlesRemoved++;
    });
    if (result.released.length > 0 || result.deletedNodes.length > 0) {
      this.log.info({ released: result.released.length, skipped: result.skipped, deletedNodes: result.deletedNodes, candidates: result.candidates }, 'GC pass reclaimed addresses');
    } else this.log.debug({ candidates: result.candidates }, 'GC pass: nothing to reclaim');
    return result;
  }

  /** Sequence-number-guarded release of one allocation; false when it was left alone. */
  private async release(c: GcCandidate): Promise<boolean> {
    if (c.sequenceNumber === null) {
      this.log.warn({ ip: c.ip, block: c.block }, 'leaked allocation has no sequence number; not releasing it (use tabbyctl ipam release)');
      return false;
    }
    try {
      const notAllocated = await this.deps.ipam.releaseIps([{ ip: c.ip, sequenceNumber: c.sequenceNumber }]);
      if (notAllocated.length > 0) return false;
      this.log.info({ ip: c.ip, handle: c.handle, reason: c.reason, ownerlessSince: new Date(c.since).toISOString() }, 'released a leaked allocation');
      return true;
    } catch (err) {
      if (isIpamError(err, 'BadSequenceNumber')) {
        this.log.info({ ip: c.ip }, 're-allocated since the GC snapshot; left alone');
        return false;
      }
      throw err;
    }
  }

  /**
   * Stop the loop, wait for a running pass and give the lease up (`releaseLease: false` keeps it, as
   * a crash would: another agent then takes over once it expires).
   */
  async stop(opts: { releaseLease?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running.catch(() => undefined);
    if (opts.releaseLease ?? true) await this.elector.release();
  }
}
