/**
 * The block allocator (Calico `lib/ipam/ipam.go`) over an injected Datastore.
 *
 * Invariants (see calico.md §2):
 * - Every write is compare-and-swap; each loop is bounded (`retries`, default 100), retries only on
 *   ConflictError and surfaces any other error.
 * - New blocks are claimed in two phases: BlockAffinity `pending` → IPAMBlock with
 *   `affinity: host:<node>` → affinity `confirmed`. Losing the block create to another host deletes
 *   our pending affinity and moves on to another block.
 * - The handle is incremented before the block write (a crash in between leaks a handle count,
 *   which `ipam check` finds; it never hands out an address twice).
 * - Per-ordinal sequence numbers make release ABA-safe.
 * - Allocation and release for a host run under the per-node lock (in-process mutex + flock).
 */
import { ConflictError, AlreadyExistsError, NotFoundError, type Datastore } from '../datastore/types.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { AllocationBlock, freeCount, hostOf, isEmptyBlock, newBlockSpec } from './block.js';
import { type Family, cidrContains, cidrWithin, enclosingCidr, formatCidr, formatIp, parseCidr, parseIp } from './cidr.js';
import { IpamError } from './errors.js';
import { withHostLock } from './lock.js';
import { blockOrder, seededShuffle } from './order.js';
import { type IntendedUse, type PoolInfo, type SelectorMatcher, calicoSelectorMatcher, poolFor, poolInfo, selectPools } from './pools.js';
import { IpamStore } from './rw.js';
import { DEFAULT_MAX_BLOCKS_PER_HOST, IPAMCONFIG_DEFAULTS } from '../api/defaults.js';
import type { BlockAffinity, IPAMBlock, IPAMConfigurationSpec } from '../api/types.js';

export const DATASTORE_RETRIES = 100;
/** Calico `EmptyBlockMinReclaimAge`. */
export const EMPTY_BLOCK_MIN_RECLAIM_AGE_MS = 60_000;

export interface IpamOptions {
  datastore: Datastore;
  log?: Logger;
  /** Milliseconds since the epoch; inject a fake for reclaim-timing tests. */
  clock?: () => number;
  /** Directory for the per-node flock; unset = in-process mutex only. */
  runDir?: string;
  lockTimeoutMs?: number;
  retries?: number;
  reclaimAgeMs?: number;
  /** Selector engine for pool nodeSelectors; defaults to the api's Calico selector parser. */
  matchSelector?: SelectorMatcher;
  /** Fault-injection seam for tests: runs after the handle write, before the block write. */
  afterHandleWrite?: (handleId: string, cidr: string) => void | Promise<void>;
}

export interface AutoAssignArgs {
  num4?: number;
  num6?: number;
  /** `k8s-pod-network.<containerID>`, `ipip-tunnel-addr-<node>` … */
  handleId?: string;
  /** Owner info stored in the block attribute (`namespace`, `pod`, `node`, `type` …). */
  attrs?: Record<string, string>;
  hostname: string;
  /** Pool names or CIDRs; empty = pools selected by nodeSelector. */
  ipv4Pools?: string[];
  ipv6Pools?: string[];
  intendedUse?: IntendedUse;
  /** Per-request limit; the effective one is the smaller of this and IPAMConfiguration's (0 = unset). */
  maxBlocksPerHost?: number;
}

export interface Assignment {
  /** The address, e.g. `10.244.1.5` or `fd00::5`. */
  ip: string;
  family: Family;
  /** The block it came from, e.g. `10.244.1.0/26`. */
  block: string;
}

export interface AutoAssignResult {
  ipv4: Assignment[];
  ipv6: Assignment[];
}

export interface AssignIpArgs {
  ip: string;
  handleId?: string;
  attrs?: Record<string, string>;
  hostname: string;
  intendedUse?: IntendedUse;
}

export interface ReleaseItem {
  ip: string;
  /** Refuse the release if the ordinal was re-allocated since this block sequence number. */
  sequenceNumber?: number;
}

export interface ReleaseAffinityOptions {
  /** Refuse (BlockNotEmpty-style InvalidArgument) when the block still has allocations. */
  requireEmpty?: boolean;
  /** Only if the block is still at this sequence number (reclaim safety). */
  sequenceNumber?: number;
}

function isConflict(err: unknown): boolean {
  return err instanceof ConflictError;
}

export class Ipam {
  readonly store: IpamStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly retries: number;
  private readonly reclaimAgeMs: number;
  private readonly match: SelectorMatcher;
  private readonly lockOpts: { runDir?: string; timeoutMs?: number };
  private readonly afterHandleWrite: IpamOptions['afterHandleWrite'];

  constructor(opts: IpamOptions) {
    this.store = new IpamStore(opts.datastore);
    this.log = opts.log ?? silentLogger();
    this.now = opts.clock ?? Date.now;
    this.retries = opts.retries ?? DATASTORE_RETRIES;
    this.reclaimAgeMs = opts.reclaimAgeMs ?? EMPTY_BLOCK_MIN_RECLAIM_AGE_MS;
    this.match = opts.matchSelector ?? calicoSelectorMatcher;
    this.afterHandleWrite = opts.afterHandleWrite;
    this.lockOpts = {};
    if (opts.runDir !== undefined) this.lockOpts.runDir = opts.runDir;
    if (opts.lockTimeoutMs !== undefined) this.lockOpts.timeoutMs = opts.lockTimeoutMs;
  }

  /** Run `fn` under this host's IPAM lock (the CNI plugin wraps a whole ADD/DEL in it). */
  withHostLock<T>(host: string, fn: () => Promise<T>): Promise<T> {
    return withHostLock(host, this.lockOpts, fn);
  }

  // ------------------------------------------------------------------ configuration

  getConfig(): Promise<IPAMConfigurationSpec> {
    return this.store.getConfig();
  }

  /** Merge and write IPAMConfiguration `default`, enforcing Calico's cross-field rules. */
  async setConfig(patch: Partial<IPAMConfigurationSpec>): Promise<IPAMConfigurationSpec> {
    return this.casLoop('IPAMConfiguration default', async () => {
      const prev = await this.store.getConfigObject();
      const next: IPAMConfigurationSpec = { ...IPAMCONFIG_DEFAULTS, ...(prev?.spec ?? {}), ...patch };
      if (!next.strictAffinity && !next.autoAllocateBlocks) {
        throw new IpamError('InvalidConfig', 'strictAffinity=false with autoAllocateBlocks=false would leave no way to get an address', {
          hint: 'enable one of them',
        });
      }
      if ((next.maxBlocksPerHost ?? 0) < 0) throw new IpamError('InvalidConfig', 'maxBlocksPerHost must be ≥ 0');
      if ((next.maxBlocksPerHost ?? 0) > 0 && !next.strictAffinity) {
        throw new IpamError('InvalidConfig', 'maxBlocksPerHost > 0 requires strictAffinity=true', {
          hint: 'set --strictaffinity=true as well',
        });
      }
      await this.store.putConfig(next, prev);
      return next;
    });
  }

  async pools(): Promise<PoolInfo[]> {
    return (await this.store.listPools()).map(poolInfo);
  }

  // ------------------------------------------------------------------ auto-assign

  /**
   * Allocate `num4` IPv4 and `num6` IPv6 addresses for `hostname`. All or nothing: when either
   * family falls short, everything allocated by this call is released and the error thrown.
   */
  async autoAssign(args: AutoAssignArgs): Promise<AutoAssignResult> {
    const num4 = args.num4 ?? 0;
    const num6 = args.num6 ?? 0;
    if (num4 < 0 || num6 < 0 || !Number.isInteger(num4) || !Number.isInteger(num6)) {
      throw new IpamError('InvalidArgument', `num4/num6 must be non-negative integers (got ${num4}/${num6})`);
    }
    if (!args.hostname) throw new IpamError('InvalidArgument', 'hostname is required');
    return this.withHostLock(args.hostname, async () => {
      // Everything the request depends on, in one parallel round trip.
      const [cfg, pools, labels, affinities] = await Promise.all([
        this.store.getConfig(),
        this.pools(),
        this.store.nodeLabels(args.hostname),
        this.store.listAffinities(args.hostname),
      ]);
      const ctx = { cfg, pools, labels, affinities };
      const result: AutoAssignResult = { ipv4: [], ipv6: [] };
      try {
        if (num4 > 0) result.ipv4 = await this.autoAssignFamily(4, num4, args, ctx, result);
        if (num6 > 0) result.ipv6 = await this.autoAssignFamily(6, num6, args, ctx, result);
      } catch (err) {
        const got = [...result.ipv4, ...result.ipv6];
        if (got.length > 0) {
          this.log.warn({ released: got.map((a) => a.ip), err: String(err) }, 'auto-assign failed; rolling back');
          await this.releaseUnlocked(got.map((a) => ({ ip: a.ip })));
        }
        throw err;
      }
      return result;
    });
  }

  private async autoAssignFamily(
    family: Family,
    num: number,
    args: AutoAssignArgs,
    ctx: { cfg: IPAMConfigurationSpec; pools: PoolInfo[]; labels: Record<string, string>; affinities: BlockAffinity[] },
    partial: AutoAssignResult,
  ): Promise<Assignment[]> {
    const { cfg, labels } = ctx;
    const host = args.hostname;
    const use = args.intendedUse ?? 'Workload';
    const requested = family === 4 ? args.ipv4Pools : args.ipv6Pools;
    const pools = selectPools(ctx.pools, family, use, labels, requested, this.match);
    if (pools.length === 0) {
      throw new IpamError('NoPools', `no enabled IPv${family} pool serves node ${host} for ${use} use`, {
        hint: 'create an IPPool, or check its nodeSelector, disabled flag and allowedUses',
      });
    }
    const handle = args.handleId ?? null;
    const attrs = args.attrs ?? null;
    const out: Assignment[] = [];
    // Push into the caller's partial result as we go, so a later failure can roll these back.
    const record = (ips: string[], block: string): void => {
      for (const ip of ips) {
        const a = { ip, family, block };
        out.push(a);
        (family === 4 ? partial.ipv4 : partial.ipv6).push(a);
      }
    };
    const inPools = (cidr: string): boolean => {
      const c = parseCidr(cidr);
      return pools.some((p) => cidrWithin(c, p.cidr));
    };

    // 1. The host's affine blocks in the chosen pools.
    const affinities = ctx.affinities.filter((a) => {
      const c = parseCidr(a.spec.cidr);
      return c.family === family && a.spec.state !== 'pendingDeletion';
    });
    await this.releaseUnselectedEmptyBlocks(host, affinities, inPools, requested);
    const mine = affinities.filter((a) => inPools(a.spec.cidr)).sort((a, b) => a.spec.cidr.localeCompare(b.spec.cidr));
    // Read the affine blocks in parallel (one round trip however many blocks the host has).
    const prefetched = await Promise.all(mine.map((a) => this.store.getBlock(a.spec.cidr)));
    for (const [i, aff] of mine.entries()) {
      if (out.length >= num) break;
      const block = await this.blockFromAffinity(host, aff, prefetched[i]);
      if (!block || freeCount(block.spec) === 0) continue;
      record(await this.assignFromBlock(block.spec.cidr, num - out.length, handle, attrs, host, block), block.spec.cidr);
    }

    // 2. Claim new blocks while allowed.
    const perRequest = args.maxBlocksPerHost ?? 0;
    const global = cfg.maxBlocksPerHost ?? 0;
    const limit = global > 0 && perRequest > 0 ? Math.min(global, perRequest) : global || perRequest || DEFAULT_MAX_BLOCKS_PER_HOST;
    let owned = mine.length;
    let limitHit = false;
    while (out.length < num && cfg.autoAllocateBlocks) {
      if (owned >= limit) {
        limitHit = true;
        break;
      }
      const block = await this.claimNewBlock(host, pools);
      if (!block) break;
      owned++;
      record(await this.assignFromBlock(block.spec.cidr, num - out.length, handle, attrs, host, block), block.spec.cidr);
    }
    if (out.length >= num) return out;

    // 3. Borrow from any block with room, unless strict affinity forbids it.
    if (cfg.strictAffinity) {
      if (limitHit) throw blockLimitError(host, limit);
      throw new IpamError('StrictAffinity', 'No more free affine blocks and strict affinity enabled', {
        hint: 'add pool space, raise maxBlocksPerHost, or disable strictAffinity to allow borrowing',
      });
    }
    const blocks = seededShuffle(
      (await this.store.listBlocks()).filter((b) => inPools(b.spec.cidr) && b.spec.affinity !== `host:${host}`),
      host,
    );
    for (const b of blocks) {
      if (out.length >= num) break;
      if (freeCount(b.spec) === 0) continue;
      record(await this.assignFromBlock(b.spec.cidr, num - out.length, handle, attrs, undefined, b), b.spec.cidr);
    }
    if (out.length >= num) return out;
    if (limitHit) throw blockLimitError(host, limit);
    throw new IpamError('Exhausted', `No IPs available in pools: [${pools.map((p) => p.cidrText).join(' ')}]`, {
      hint: 'add an IP pool or release unused addresses (tabbyctl ipam check)',
    });
  }

  /** Empty affine blocks of pools that no longer select this node lose their affinity (Calico prepareAffinityBlocksForHost). */
  private async releaseUnselectedEmptyBlocks(
    host: string,
    affinities: BlockAffinity[],
    inPools: (cidr: string) => boolean,
    requested: string[] | undefined,
  ): Promise<void> {
    if (requested && requested.length > 0) return;
    for (const aff of affinities) {
      if (inPools(aff.spec.cidr) || aff.spec.state !== 'confirmed') continue;
      const block = await this.store.getBlock(aff.spec.cidr);
      if (!block || !isEmptyBlock(block.spec)) continue;
      try {
        await this.releaseAffinityUnlocked(host, aff.spec.cidr, { requireEmpty: true });
      } catch (err) {
        // Someone allocated meanwhile: the block stays; nothing is lost.
        if (!(err instanceof IpamError && err.code === 'InvalidArgument')) throw err;
      }
    }
  }

  /**
   * The block behind one of our affinities, repairing what a crash may have left: a missing block
   * is created (affinity exists, block write never happened), a stale affinity (block belongs to
   * someone else) is deleted, a pending affinity is confirmed.
   */
  private async blockFromAffinity(host: string, aff: BlockAffinity, prefetched: IPAMBlock | undefined): Promise<IPAMBlock | undefined> {
    const cidr = aff.spec.cidr;
    let block = prefetched;
    if (!block) {
      // Re-read the affinity: it may have been released (reclaimed) since we listed it, and
      // recreating the block then would resurrect a block without an affinity.
      const current = await this.store.getAffinity(host, cidr);
      if (!current || current.spec.state === 'pendingDeletion') return undefined;
      try {
        block = await this.store.createBlock(newBlockSpec(parseCidr(cidr), `host:${host}`, new Date(this.now()).toISOString(), this.initialSequence()));
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
        block = await this.store.getBlock(cidr);
        if (!block) return undefined;
      }
    }
    if (block.spec.affinity !== `host:${host}`) {
      this.log.info({ cidr, host, owner: block.spec.affinity }, 'deleting stale block affinity');
      await this.store.deleteAffinity(aff);
      return undefined;
    }
    if (aff.spec.state === 'pending') {
      block = await this.casLoop(`IPAMBlock ${cidr}`, async () => {
        const b = await this.store.getBlock(cidr);
        if (!b) throw new NotFoundError('IPAMBlock', cidr);
        return this.store.updateBlock(b, b.spec);
      });
      await this.confirmAffinity(host, cidr);
    }
    return block;
  }

  /** Find a free block in the pools (host-seeded order), or reclaim another host's old empty one, and claim it. */
  private async claimNewBlock(host: string, pools: PoolInfo[]): Promise<IPAMBlock | undefined> {
    const existing = new Map<string, IPAMBlock>();
    for (const b of await this.store.listBlocks()) existing.set(b.spec.cidr, b);
    for (const pool of pools) {
      for (const c of blockOrder(pool.cidr, pool.blockSize, host)) {
        const cidr = formatCidr(c);
        if (existing.has(cidr)) continue;
        try {
          return await this.claimBlock(host, cidr);
        } catch (err) {
          if (!(err instanceof IpamError && err.code === 'BlockClaimConflict')) throw err;
          const b = await this.store.getBlock(cidr);
          if (b) existing.set(cidr, b);
        }
      }
    }
    // Every block exists: reclaim an empty one whose claim is old enough.
    const cutoff = this.now() - this.reclaimAgeMs;
    for (const b of existing.values()) {
      const c = parseCidr(b.spec.cidr);
      if (!pools.some((p) => cidrWithin(c, p.cidr))) continue;
      const owner = hostOf(b.spec);
      if (owner === undefined || owner === host || !isEmptyBlock(b.spec)) continue;
      const claimed = b.spec.affinityClaimTime ? Date.parse(b.spec.affinityClaimTime) : 0;
      if (claimed > cutoff) continue;
      try {
        this.log.info({ cidr: b.spec.cidr, from: owner, to: host }, 'reclaiming empty block');
        const opts: ReleaseAffinityOptions = { requireEmpty: true };
        if (b.spec.sequenceNumber !== undefined) opts.sequenceNumber = b.spec.sequenceNumber;
        await this.releaseAffinityUnlocked(owner, b.spec.cidr, opts);
        return await this.claimBlock(host, b.spec.cidr);
      } catch (err) {
        if (err instanceof IpamError && (err.code === 'BlockClaimConflict' || err.code === 'InvalidArgument')) continue;
        if (isConflict(err)) continue;
        throw err;
      }
    }
    return undefined;
  }

  /** Two-phase claim: pending affinity → block create → confirmed. BlockClaimConflict when another host won. */
  private async claimBlock(host: string, cidr: string): Promise<IPAMBlock> {
    // Phase 1: pending affinity.
    await this.casLoop(`BlockAffinity ${host} ${cidr}`, async () => {
      try {
        await this.store.createAffinity({ cidr, node: host, state: 'pending', type: 'host', deleted: 'false' });
        return;
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
      }
      const aff = await this.store.getAffinity(host, cidr);
      if (!aff) throw new ConflictError('BlockAffinity', cidr, 'vanished while claiming');
      if (aff.spec.state === 'confirmed' || aff.spec.state === 'pending') return;
      await this.store.updateAffinity(aff, { ...aff.spec, state: 'pending' });
    });
    // Phase 2: the block itself, affine to us.
    let block: IPAMBlock | undefined;
    try {
      block = await this.store.createBlock(newBlockSpec(parseCidr(cidr), `host:${host}`, new Date(this.now()).toISOString(), this.initialSequence()));
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      block = await this.store.getBlock(cidr);
      if (!block || block.spec.affinity !== `host:${host}`) {
        const aff = await this.store.getAffinity(host, cidr);
        if (aff && aff.spec.state === 'pending') await this.store.deleteAffinity(aff);
        throw new IpamError('BlockClaimConflict', `block ${cidr} was claimed by ${block?.spec.affinity ?? 'someone else'}`);
      }
    }
    // Phase 3: confirm.
    await this.confirmAffinity(host, cidr);
    this.log.info({ host, cidr }, 'claimed block');
    return block;
  }

  private async confirmAffinity(host: string, cidr: string): Promise<void> {
    await this.casLoop(`BlockAffinity ${host} ${cidr}`, async () => {
      const aff = await this.store.getAffinity(host, cidr);
      if (!aff) throw new IpamError('BlockClaimConflict', `affinity for ${cidr} vanished before confirmation`);
      if (aff.spec.state === 'confirmed') return;
      await this.store.updateAffinity(aff, { ...aff.spec, state: 'confirmed' });
    });
  }

  /**
   * Allocate up to `num` addresses from one block: increment the handle, then CAS-write the block;
   * on a lost CAS undo the handle increment and try again. `affineTo` set = only if the block is
   * still affine to that host. `known` = a just-read copy used for the first attempt.
   */
  private async assignFromBlock(
    cidr: string,
    num: number,
    handle: string | null,
    attrs: Record<string, string> | null,
    affineTo: string | undefined,
    known?: IPAMBlock,
  ): Promise<string[]> {
    let cached = known;
    return this.casLoop(`IPAMBlock ${cidr}`, async () => {
      const obj = cached ?? (await this.store.getBlock(cidr));
      cached = undefined;
      if (!obj) return [];
      if (affineTo !== undefined && obj.spec.affinity !== `host:${affineTo}`) return [];
      const b = new AllocationBlock(obj.spec);
      const ips = b.autoAssign(num, handle, attrs);
      if (ips.length === 0) return [];
      await this.writeWithHandle(obj, b, handle, ips.length);
      return ips;
    });
  }

  /** Handle first, then block; undo the handle if the block write fails. */
  private async writeWithHandle(obj: IPAMBlock, b: AllocationBlock, handle: string | null, n: number): Promise<void> {
    if (handle) await this.incrementHandle(handle, obj.spec.cidr, n);
    if (handle && this.afterHandleWrite) await this.afterHandleWrite(handle, obj.spec.cidr);
    try {
      await this.store.updateBlock(obj, b.spec);
    } catch (err) {
      if (handle) await this.decrementHandle(handle, obj.spec.cidr, n);
      throw err;
    }
  }

  // ------------------------------------------------------------------ specific IP

  /** Allocate one specific address (claims its block for the host when the block does not exist yet). */
  async assignIp(args: AssignIpArgs): Promise<Assignment> {
    const { family, value } = parseIp(args.ip);
    const use = args.intendedUse ?? 'Workload';
    return this.withHostLock(args.hostname, async () => {
      const cfg = await this.store.getConfig();
      const pool = poolFor(await this.pools(), family, value);
      if (!pool) {
        throw new IpamError('NotInPool', `${args.ip} is not in any enabled IP pool`, { hint: 'pick an address inside an IPPool' });
      }
      if (!pool.allowedUses.includes(use)) {
        throw new IpamError('PoolUnusable', `pool ${pool.name} does not allow ${use} use (allowedUses ${pool.allowedUses.join(',')})`);
      }
      const cidr = formatCidr(enclosingCidr(family, value, pool.blockSize));
      const ip = formatIp(family, value);
      await this.casLoop(`IPAMBlock ${cidr}`, async () => {
        let obj = await this.store.getBlock(cidr);
        if (!obj) {
          try {
            obj = await this.claimBlock(args.hostname, cidr);
          } catch (err) {
            if (err instanceof IpamError && err.code === 'BlockClaimConflict') throw new ConflictError('IPAMBlock', cidr, 'claimed concurrently');
            throw err;
          }
        }
        if (cfg.strictAffinity && obj.spec.affinity !== `host:${args.hostname}`) {
          throw new IpamError('StrictAffinity', `${ip} is in block ${cidr} (affinity ${obj.spec.affinity ?? 'none'}) and strict affinity is enabled`, {
            hint: 'assign an address from a block affine to this node, or disable strictAffinity',
          });
        }
        const b = new AllocationBlock(obj.spec);
        b.assign(ip, args.handleId ?? null, args.attrs ?? null);
        await this.writeWithHandle(obj, b, args.handleId ?? null, 1);
      });
      return { ip, family, block: cidr };
    });
  }

  // ------------------------------------------------------------------ release

  /**
   * Release addresses. Returns the ones that were not allocated (already free, or in no block).
   * Empty blocks without affinity are deleted; the handles are decremented (deleted at zero).
   * `hostname` selects the lock to hold (omit for tools acting cluster-wide).
   */
  async releaseIps(items: Array<string | ReleaseItem>, hostname?: string): Promise<string[]> {
    const norm = items.map((i) => (typeof i === 'string' ? { ip: i } : i));
    if (hostname === undefined) return this.releaseUnlocked(norm);
    return this.withHostLock(hostname, () => this.releaseUnlocked(norm));
  }

  private async releaseUnlocked(items: ReleaseItem[]): Promise<string[]> {
    const pools = await this.pools();
    let blocks: IPAMBlock[] | undefined;
    const byBlock = new Map<string, ReleaseItem[]>();
    const unallocated: string[] = [];
    for (const item of items) {
      const { family, value } = parseIp(item.ip);
      let cidr: string | undefined;
      const pool = pools.find((p) => cidrContains(p.cidr, family, value));
      if (pool) cidr = formatCidr(enclosingCidr(family, value, pool.blockSize));
      else {
        blocks ??= await this.store.listBlocks();
        cidr = blocks.find((b) => cidrContains(parseCidr(b.spec.cidr), family, value))?.spec.cidr;
      }
      if (cidr === undefined) unallocated.push(item.ip);
      else byBlock.set(cidr, [...(byBlock.get(cidr) ?? []), { ...item, ip: formatIp(family, value) }]);
    }
    for (const [cidr, its] of byBlock) unallocated.push(...(await this.releaseFromBlock(cidr, its)));
    return unallocated;
  }

  private async releaseFromBlock(cidr: string, items: ReleaseItem[]): Promise<string[]> {
    const { released, notAllocated } = await this.casLoop(`IPAMBlock ${cidr}`, async () => {
      const obj = await this.store.getBlock(cidr);
      if (!obj) return { released: new Map<string, number>(), notAllocated: items.map((i) => i.ip) };
      const b = new AllocationBlock(obj.spec);
      const rel = b.release(items);
      const notAllocated = rel.notAllocated.map((o) => b.ipOf(o));
      if (notAllocated.length === items.length) return { released: rel.byHandle, notAllocated };
      if (b.isEmpty() && !obj.spec.affinity) await this.store.deleteBlock(obj);
      else await this.store.updateBlock(obj, b.spec);
      return { released: rel.byHandle, notAllocated };
    });
    for (const [h, n] of released) await this.decrementHandle(h, cidr, n);
    return notAllocated;
  }

  /** Release every address of a handle; returns how many were released (0 when the handle is unknown). */
  async releaseByHandle(handleId: string, hostname?: string): Promise<number> {
    const run = async (): Promise<number> => {
      const h = await this.store.getHandle(handleId);
      if (!h) return 0;
      let total = 0;
      for (const cidr of Object.keys(h.spec.block)) {
        total += await this.casLoop(`IPAMBlock ${cidr}`, async () => {
          const obj = await this.store.getBlock(cidr);
          if (!obj) return 0;
          const b = new AllocationBlock(obj.spec);
          const n = b.releaseHandle(handleId);
          if (n === 0) return 0;
          if (b.isEmpty() && !obj.spec.affinity) await this.store.deleteBlock(obj);
          else await this.store.updateBlock(obj, b.spec);
          return n;
        });
        // Drop the whole per-block count: covers a count leaked by a crash before the block write.
        await this.decrementHandle(handleId, cidr, Number.MAX_SAFE_INTEGER);
      }
      return total;
    };
    return hostname === undefined ? run() : this.withHostLock(hostname, run);
  }

  /** The addresses currently allocated to a handle (read-only; follows the handle's block list). */
  async ipsByHandle(handleId: string): Promise<Assignment[]> {
    const h = await this.store.getHandle(handleId);
    if (!h) return [];
    const out: Assignment[] = [];
    for (const cidr of Object.keys(h.spec.block)) {
      const obj = await this.store.getBlock(cidr);
      if (!obj) continue;
      const b = new AllocationBlock(obj.spec);
      for (const a of b.allocated()) if (a.attr.handle_id === handleId) out.push({ ip: a.ip, family: b.family, block: cidr });
    }
    return out;
  }

  /**
   * Rewrite a handle's per-block counts from what the blocks actually hold (repairs a count leaked
   * by a crash between the handle write and the block write); deletes it when nothing is left.
   * Returns true when the handle changed.
   */
  async reconcileHandle(handleId: string): Promise<boolean> {
    return this.casLoop(`IPAMHandle ${handleId}`, async () => {
      const h = await this.store.getHandle(handleId);
      if (!h) return false;
      const actual: Record<string, number> = {};
      for (const a of await this.ipsByHandle(handleId)) actual[a.block] = (actual[a.block] ?? 0) + 1;
      const same = Object.keys(actual).length === Object.keys(h.spec.block).length && Object.entries(actual).every(([c, n]) => h.spec.block[c] === n);
      if (same) return false;
      if (Object.keys(actual).length === 0) await this.store.deleteHandle(h);
      else await this.store.updateHandle(h, { ...h.spec, block: actual });
      return true;
    });
  }

  // ------------------------------------------------------------------ affinities

  /**
   * Give up a host's affinity for a block (Calico releaseBlockAffinity): affinity → pendingDeletion,
   * then delete the block if empty or clear its affinity, then delete the affinity.
   */
  async releaseAffinity(host: string, cidr: string, opts: ReleaseAffinityOptions = {}): Promise<void> {
    await this.withHostLock(host, () => this.releaseAffinityUnlocked(host, cidr, opts));
  }

  /** Release every affinity of a host (node removed). Non-empty blocks stay, unaffine. */
  async releaseHostAffinities(host: string): Promise<number> {
    const affs = await this.store.listAffinities(host);
    for (const a of affs) await this.releaseAffinity(host, a.spec.cidr);
    return affs.length;
  }

  private async releaseAffinityUnlocked(host: string, cidr: string, opts: ReleaseAffinityOptions): Promise<void> {
    await this.casLoop(`BlockAffinity ${host} ${cidr}`, async () => {
      const aff = await this.store.getAffinity(host, cidr);
      const block = await this.store.getBlock(cidr);
      if (!aff) {
        if (block && block.spec.affinity === `host:${host}`) {
          await this.store.updateBlock(block, { ...block.spec, affinity: null, affinityClaimTime: undefined });
        }
        return;
      }
      if (!block) {
        await this.store.deleteAffinity(aff);
        return;
      }
      if (block.spec.affinity !== `host:${host}`) {
        await this.store.deleteAffinity(aff);
        return;
      }
      const empty = isEmptyBlock(block.spec);
      if (opts.requireEmpty && !empty) throw new IpamError('InvalidArgument', `block ${cidr} is not empty`);
      if (opts.sequenceNumber !== undefined && block.spec.sequenceNumber !== opts.sequenceNumber) {
        throw new IpamError('InvalidArgument', `block ${cidr} changed since it was read (sequence ${block.spec.sequenceNumber})`);
      }
      const pending = aff.spec.state === 'pendingDeletion' ? aff : await this.store.updateAffinity(aff, { ...aff.spec, state: 'pendingDeletion' });
      if (empty) await this.store.deleteBlock(block);
      else await this.store.updateBlock(block, { ...block.spec, affinity: null, affinityClaimTime: undefined });
      await this.store.deleteAffinity(pending);
    });
  }

  // ------------------------------------------------------------------ handles

  private async incrementHandle(handleId: string, cidr: string, n: number): Promise<void> {
    // Most handles are new (one per container): try the create first, fall back to CAS update.
    let tryCreate = true;
    await this.casLoop(`IPAMHandle ${handleId}`, async () => {
      if (tryCreate) {
        tryCreate = false;
        try {
          await this.store.createHandle({ handleID: handleId, block: { [cidr]: n }, deleted: false });
          return;
        } catch (err) {
          if (!(err instanceof AlreadyExistsError)) throw err;
        }
      }
      const h = await this.store.getHandle(handleId);
      if (!h) {
        tryCreate = true;
        throw new ConflictError('IPAMHandle', handleId, 'deleted concurrently');
      }
      await this.store.updateHandle(h, { ...h.spec, block: { ...h.spec.block, [cidr]: (h.spec.block[cidr] ?? 0) + n } });
    });
  }

  private async decrementHandle(handleId: string, cidr: string, n: number): Promise<void> {
    await this.casLoop(`IPAMHandle ${handleId}`, async () => {
      const h = await this.store.getHandle(handleId);
      if (!h) return;
      const block = { ...h.spec.block };
      const left = (block[cidr] ?? 0) - n;
      if (left > 0) block[cidr] = left;
      else delete block[cidr];
      if (Object.keys(block).length === 0) {
        try {
          await this.store.deleteHandle(h);
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
        }
      } else await this.store.updateHandle(h, { ...h.spec, block });
    });
  }

  // ------------------------------------------------------------------ helpers

  /** Bounded CAS loop: retry `fn` on ConflictError, surface anything else. */
  private async casLoop<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let last: unknown;
    for (let i = 0; i < this.retries; i++) {
      try {
        return await fn();
      } catch (err) {
        if (!isConflict(err)) throw err;
        last = err;
        this.log.debug({ what, attempt: i + 1 }, 'CAS conflict; retrying');
      }
    }
    throw new IpamError('RetriesExhausted', `gave up on ${what} after ${this.retries} compare-and-swap conflicts`, {
      hint: 'heavy contention on this object; retry the operation',
      cause: last,
    });
  }

  /** Calico starts a block's sequence at time-in-ns; we use µs to stay within 2^53. */
  private initialSequence(): number {
    return this.now() * 1000;
  }
}

function blockLimitError(host: string, limit: number): IpamError {
  return new IpamError('BlockLimit', `cannot allocate new block due to per host block limit (${limit} blocks on ${host})`, {
    hint: 'raise maxBlocksPerHost (tabbyctl ipam configure --max-blocks-per-host) or free addresses on this node',
  });
}
