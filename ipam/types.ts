/**
 * The IPAM storage shapes, with Calico's crd.projectcalico.org/v1 field names (reference calico.md
 * §1.2–1.5). Structural on purpose: the allocator needs only these fields.
 */
import type { Resource } from '../api/meta.js';

export interface AllocationAttribute {
  handle_id?: string | null;
  /** Free-form owner info: namespace, pod, node, type (`ipipTunnelAddress` …), timestamp. */
  secondary?: Record<string, string> | null;
}

export interface IPAMBlockSpec {
  cidr: string;
  /** `host:<node>` or `virtual:<name>`; null/absent = unaffine (borrowable, deleted when empty). */
  affinity?: string | null;
  affinityClaimTime?: string | null;
  /** One entry per ordinal: null = free, n = index into `attributes`. */
  allocations: Array<number | null>;
  /** FIFO of free ordinals: allocation pops the head, release appends to the tail. */
  unallocated: number[];
  attributes: AllocationAttribute[];
  /** Bumped on every write. */
  sequenceNumber?: number;
  /** ordinal (as a string) → block sequenceNumber when it was allocated (ABA guard on release). */
  sequenceNumberForAllocation?: Record<string, number>;
  /** Deprecated, unused (IPAMConfiguration holds the setting); kept for the schema. */
  strictAffinity: boolean;
  deleted?: boolean;
}

export type AffinityState = 'pending' | 'confirmed' | 'pendingDeletion' | '';

export interface BlockAffinitySpec {
  cidr: string;
  node: string;
  state: AffinityState;
  /** `host` (default) or `virtual`. */
  type?: string;
  /** A string in v1: "true" / "false". */
  deleted: string;
}

export interface IPAMHandleSpec {
  handleID: string;
  /** block CIDR → number of this handle's addresses in it. */
  block: Record<string, number>;
  deleted?: boolean;
}

export interface IPAMConfigurationSpec {
  strictAffinity: boolean;
  autoAllocateBlocks: boolean;
  /** 0 = the default of 20. */
  maxBlocksPerHost?: number;
}

export type AllowedUse = 'Workload' | 'Tunnel' | 'LoadBalancer';

export interface IPPoolSpec {
  cidr: string;
  blockSize?: number;
  disabled?: boolean;
  nodeSelector?: string;
  allowedUses?: AllowedUse[];
  assignmentMode?: 'Automatic' | 'Manual';
  ipipMode?: string;
  vxlanMode?: string;
  natOutgoing?: boolean;
}

export type IPAMBlock = Resource<'IPAMBlock', IPAMBlockSpec>;
export type BlockAffinity = Resource<'BlockAffinity', BlockAffinitySpec>;
export type IPAMHandle = Resource<'IPAMHandle', IPAMHandleSpec>;
export type IPAMConfiguration = Resource<'IPAMConfiguration', IPAMConfigurationSpec>;
export type IPPool = Resource<'IPPool', IPPoolSpec>;

export const DEFAULT_MAX_BLOCKS_PER_HOST = 20;
export const IPAM_CONFIG_NAME = 'default';
