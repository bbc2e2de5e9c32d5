/**
 * Pure, in-memory operations on one IPAM block (Calico `ipam_block.go`): allocate from the FIFO
 * `unallocated` list, assign a specific ordinal, release with the per-ordinal sequence-number guard,
 * release by handle. No I/O: the allocator reads a block, works on an `AllocationBlock` (which holds
 * its own copy) and writes `.spec` back with compare-and-swap.
 *
 * Ordinal 0 and the last ordinal are ordinary addresses: a block is not a subnet.
 */
import { type Cidr, type Family, cidrContains, cidrSize, formatIp, parseCidr, parseIp } from './cidr.js';
import { IpamError } from './errors.js';
import type { AllocationAttribute, IPAMBlockSpec } from '../api/types.js';

/** A fresh block spec: every ordinal free, FIFO in ascending order. */
export function newBlockSpec(cidr: Cidr, affinity: string | null, claimTime: string | null, sequenceNumber: number): IPAMBlockSpec {
  const n = Number(cidrSize(cidr));
  return {
    cidr: `${formatIp(cidr.family, cidr.base)}/${cidr.prefix}`,
    affinity,
    ...(claimTime === null ? {} : { affinityClaimTime: claimTime }),
    allocations: new Array<number | null>(n).fill(null),
    unallocated: Array.from({ length: n }, (_, i) => i),
    attributes: [],
    sequenceNumber,
    sequenceNumberForAllocation: {},
    strictAffinity: false,
    deleted: false,
  };
}

function sameSecondary(a: Record<string, string> | undefined, b: Record<string, string> | null): boolean {
  const ea = Object.entries(a ?? {});
  const eb = b ?? {};
  return ea.length === Object.keys(eb).length && ea.every(([k, v]) => eb[k] === v);
}

/** Read-only questions about a block spec, without the copy an AllocationBlock makes. */
export function freeCount(spec: IPAMBlockSpec): number {
  return spec.unallocated.length;
}

export function isEmptyBlock(spec: IPAMBlockSpec): boolean {
  return spec.allocations.every((a) => a === null);
}

/** `host:<node>` affinity → node name; undefined for unaffine or virtual blocks. */
export function hostOf(spec: IPAMBlockSpec): string | undefined {
  const a = spec.affinity;
  return a?.startsWith('host:') ? a.slice(5) : undefined;
}

export interface Released {
  /** handle → number of addresses released from this block. */
  byHandle: Map<string, number>;
  /** Ordinals that were already free. */
  notAllocated: number[];
}

export class AllocationBlock {
  readonly spec: IPAMBlockSpec;
  readonly cidr: Cidr;

  /** Takes a copy: the caller's object is never modified. */
  constructor(spec: IPAMBlockSpec) {
    this.spec = structuredClone(spec);
    this.spec.sequenceNumberForAllocation ??= {};
    this.spec.sequenceNumber ??= 0;
    this.cidr = parseCidr(spec.cidr);
  }

  get family(): Family {
    return this.cidr.family;
  }

  get size(): number {
    return this.spec.allocations.length;
  }

  numFree(): number {
    return this.spec.unallocated.length;
  }

  inUse(): number {
    return this.spec.allocations.reduce<number>((n, a) => (a === null ? n : n + 1), 0);
  }

  isEmpty(): boolean {
    return isEmptyBlock(this.spec);
  }

  hostAffinity(): string | undefined {
    return hostOf(this.spec);
  }

  ordinalOf(ip: string): number {
    const { family, value } = parseIp(ip);
    if (!cidrContains(this.cidr, family, value)) {
      throw new IpamError('InvalidArgument', `${ip} is not in block ${this.spec.cidr}`);
    }
    return Number(value - this.cidr.base);
  }

  ipOf(ordinal: number): string {
    return formatIp(this.cidr.family, this.cidr.base + BigInt(ordinal));
  }

  /** Attribute (owner) of an allocated ordinal, undefined when free. */
  attributeOf(ordinal: number): AllocationAttribute | undefined {
    const idx = this.spec.allocations[ordinal];
    return idx === null || idx === undefined ? undefined : this.spec.attributes[idx];
  }

  /** Allocated ordinals with their attribute. */
  *allocated(): Generator<{ ordinal: number; ip: string; attr: AllocationAttribute }> {
    for (let ord = 0; ord < this.spec.allocations.length; ord++) {
      const attr = this.attributeOf(ord);
      if (attr) yield { ordinal: ord, ip: this.ipOf(ord), attr };
    }
  }

  private attributeIndex(handleId: string | null, secondary: Record<string, string> | null): number {
    const idx = this.spec.attributes.findIndex((a) => (a.handle_id ?? null) === handleId && sameSecondary(a.secondary, secondary));
    if (idx >= 0) return idx;
    const attr: AllocationAttribute = {};
    if (handleId !== null) attr.handle_id = handleId;
    if (secondary !== null) attr.secondary = { ...secondary };
    this.spec.attributes.push(attr);
    return this.spec.attributes.length - 1;
  }

  private markAllocated(ordinal: number, attrIdx: number): void {
    this.spec.allocations[ordinal] = attrIdx;
    this.spec.sequenceNumberForAllocation![String(ordinal)] = this.spec.sequenceNumber!;
  }

  /**
   * Pop up to `num` free ordinals from the head of the FIFO (skipping `reserved` ones, which stay
   * in place). Returns the addresses; fewer than `num` when the block runs out.
   */
  autoAssign(num: number, handleId: string | null, secondary: Record<string, string> | null, reserved?: (ip: string) => boolean): string[] {
    const out: string[] = [];
    if (num <= 0) return out;
    const keep: number[] = [];
    let attrIdx: number | undefined;
    while (out.length < num && this.spec.unallocated.length > 0) {
      const ord = this.spec.unallocated.shift()!;
      const ip = this.ipOf(ord);
      if (reserved?.(ip)) {
        keep.push(ord);
        continue;
      }
      attrIdx ??= this.attributeIndex(handleId, secondary);
      this.markAllocated(ord, attrIdx);
      out.push(ip);
    }
    this.spec.unallocated.unshift(...keep);
    return out;
  }

  /** Allocate one specific address; AlreadyAssigned when it is taken. */
  assign(ip: string, handleId: string | null, secondary: Record<string, string> | null): void {
    const ord = this.ordinalOf(ip);
    if (this.spec.allocations[ord] !== null) {
      throw new IpamError('AlreadyAssigned', `${ip} is already allocated`, { hint: 'release it first or pick another address' });
    }
    const pos = this.spec.unallocated.indexOf(ord);
    if (pos >= 0) this.spec.unallocated.splice(pos, 1);
    this.markAllocated(ord, this.attributeIndex(handleId, secondary));
  }

  /**
   * Release addresses. With `sequenceNumber` set the release is refused (BadSequenceNumber) when the
   * ordinal was re-allocated since that number was read: nothing is changed then.
   */
  release(items: Array<{ ip: string; sequenceNumber?: number }>): Released {
    const byHandle = new Map<string, number>();
    const notAllocated: number[] = [];
    const ords: number[] = [];
    for (const item of items) {
      const ord = this.ordinalOf(item.ip);
      const idx = this.spec.allocations[ord];
      if (idx === null || idx === undefined) {
        notAllocated.push(ord);
        continue;
      }
      if (item.sequenceNumber !== undefined && this.spec.sequenceNumberForAllocation![String(ord)] !== item.sequenceNumber) {
        throw new IpamError('BadSequenceNumber', `${item.ip} was re-allocated since sequence number ${item.sequenceNumber}`, {
          hint: 're-read the block; the address now belongs to someone else',
        });
      }
      ords.push(ord);
    }
    for (const ord of ords) {
      const handle = this.attributeOf(ord)?.handle_id;
      if (handle) byHandle.set(handle, (byHandle.get(handle) ?? 0) + 1);
      this.freeOrdinal(ord);
    }
    this.compactAttributes();
    return { byHandle, notAllocated };
  }

  /** Release every address of a handle; returns how many. */
  releaseHandle(handleId: string): number {
    let n = 0;
    for (let ord = 0; ord < this.spec.allocations.length; ord++) {
      if (this.attributeOf(ord)?.handle_id === handleId) {
        this.freeOrdinal(ord);
        n++;
      }
    }
    if (n > 0) this.compactAttributes();
    return n;
  }

  /** handle → number of its addresses in this block. */
  handleCounts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const { attr } of this.allocated()) {
      if (attr.handle_id) m.set(attr.handle_id, (m.get(attr.handle_id) ?? 0) + 1);
    }
    return m;
  }

  private freeOrdinal(ord: number): void {
    this.spec.allocations[ord] = null;
    delete this.spec.sequenceNumberForAllocation![String(ord)];
    this.spec.unallocated.push(ord);
  }

  /** Drop attributes nobody references and renumber allocations (Calico `deleteAttributes`). */
  private compactAttributes(): void {
    const used = new Set<number>();
    for (const a of this.spec.allocations) if (a !== null) used.add(a);
    if (used.size === this.spec.attributes.length) return;
    const remap = new Map<number, number>();
    const attrs: AllocationAttribute[] = [];
    this.spec.attributes.forEach((a, i) => {
      if (used.has(i)) {
        remap.set(i, attrs.length);
        attrs.push(a);
      }
    });
    this.spec.attributes = attrs;
    this.spec.allocations = this.spec.allocations.map((a) => (a === null ? null : remap.get(a)!));
  }
}
