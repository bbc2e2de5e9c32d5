/**
 * Pool selection (Calico `determinePools`): pure functions over IPPool objects and node labels.
 */
import { DEFAULT_BLOCK_SIZE_V4, DEFAULT_BLOCK_SIZE_V6, IPPOOL_DEFAULTS } from '../api/defaults.js';
import { type Selector, parseSelector } from '../api/selector.js';
import type { IPPool, IPPoolAllowedUse } from '../api/types.js';
import { type Cidr, type Family, cidrContains, parseCidr } from './cidr.js';
import { IpamError } from './errors.js';

export type IntendedUse = 'Workload' | 'Tunnel';

/** A pool with Calico's defaults applied. */
export interface PoolInfo {
  name: string;
  cidrText: string;
  cidr: Cidr;
  blockSize: number;
  disabled: boolean;
  nodeSelector: string;
  allowedUses: IPPoolAllowedUse[];
  manual: boolean;
}

export type SelectorMatcher = (selector: string, labels: Record<string, string>) => boolean;

export function poolInfo(p: IPPool): PoolInfo {
  const cidr = parseCidr(p.spec.cidr);
  return {
    name: p.metadata.name,
    cidrText: p.spec.cidr,
    cidr,
    blockSize: p.spec.blockSize ?? (cidr.family === 4 ? DEFAULT_BLOCK_SIZE_V4 : DEFAULT_BLOCK_SIZE_V6),
    disabled: p.spec.disabled ?? false,
    nodeSelector: p.spec.nodeSelector || IPPOOL_DEFAULTS.nodeSelector!,
    allowedUses: p.spec.allowedUses?.length ? p.spec.allowedUses : [...IPPOOL_DEFAULTS.allowedUses!],
    manual: p.spec.assignmentMode === 'Manual',
  };
}

const parsed = new Map<string, Selector>();

/** Calico selector semantics (api/selector.ts), with parsed selectors cached by source text. */
export const calicoSelectorMatcher: SelectorMatcher = (selector, labels) => {
  let sel = parsed.get(selector);
  if (!sel) {
    try {
      sel = parseSelector(selector);
    } catch (err) {
      throw new IpamError('InvalidConfig', `invalid pool nodeSelector ${JSON.stringify(selector)}`, { cause: err, hint: 'fix the IPPool nodeSelector' });
    }
    parsed.set(selector, sel);
  }
  return sel.matches(labels);
};

/**
 * Pools to allocate from. `requested` (names or CIDRs) are used whatever their nodeSelector, but
 * must exist, be enabled, and allow the use; otherwise enabled Automatic pools whose nodeSelector
 * matches the node and whose allowedUses include the use.
 */
export function selectPools(
  all: readonly PoolInfo[],
  family: Family,
  use: IntendedUse,
  labels: Record<string, string>,
  requested: readonly string[] | undefined,
  match: SelectorMatcher,
): PoolInfo[] {
  const ofFamily = all.filter((p) => p.cidr.family === family);
  if (requested && requested.length > 0) {
    return requested.map((r) => {
      const p = ofFamily.find((x) => x.name === r || x.cidrText === r);
      if (!p || p.disabled) {
        throw new IpamError('PoolUnusable', `the requested pool ${r} does not exist, or is not enabled`, {
          hint: 'check `tabbyctl get ippools` and the ipv4_pools/ipv6_pools setting',
        });
      }
      if (!p.allowedUses.includes(use)) {
        throw new IpamError('PoolUnusable', `the requested pool ${r} does not allow ${use} use (allowedUses ${p.allowedUses.join(',')})`);
      }
      return p;
    });
  }
  return ofFamily.filter((p) => !p.disabled && !p.manual && p.allowedUses.includes(use) && match(p.nodeSelector, labels));
}

/** The enabled pool that contains an address (first match), if any. */
export function poolFor(all: readonly PoolInfo[], family: Family, value: bigint): PoolInfo | undefined {
  return all.find((p) => !p.disabled && cidrContains(p.cidr, family, value));
}
