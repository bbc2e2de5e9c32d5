/**
 * One error class for IPAM outcomes, distinguished by a stable `code` (tests, the CNI plugin and
 * tabbyctl match on it). The message says what happened; the hint what to do.
 */
import { TabbyError } from '../lib/errors.js';

export type IpamErrorCode =
  | 'InvalidAddress'
  | 'InvalidCidr'
  | 'InvalidArgument'
  /** No enabled pool serves this node / family / use. */
  | 'NoPools'
  /** A pool named in the request does not exist, is disabled or does not allow this use. */
  | 'PoolUnusable'
  /** The host already has maxBlocksPerHost blocks and none has room. */
  | 'BlockLimit'
  /** No room in affine blocks, no new block claimable, borrowing forbidden by strictAffinity. */
  | 'StrictAffinity'
  /** Every block of every usable pool is full. */
  | 'Exhausted'
  /** A specific IP is already allocated. */
  | 'AlreadyAssigned'
  /** A specific IP is outside every usable pool. */
  | 'NotInPool'
  /** Release refused: the address was re-allocated since the caller saw it (ABA guard). */
  | 'BadSequenceNumber'
  /** The bounded compare-and-swap loop lost every round. */
  | 'RetriesExhausted'
  /** Another host claimed the block between our pending affinity and block create. */
  | 'BlockClaimConflict'
  /** The per-node lock could not be taken in time. */
  | 'LockTimeout'
  | 'InvalidConfig';

export class IpamError extends TabbyError {
  declare readonly code: IpamErrorCode;
  constructor(code: IpamErrorCode, message: string, options?: { hint?: string; cause?: unknown }) {
    super(code, message, options);
  }
}

export function isIpamError(err: unknown, code?: IpamErrorCode): err is IpamError {
  return err instanceof IpamError && (code === undefined || err.code === code);
}
