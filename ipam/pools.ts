/**
 * Pool selection (Calico `determinePools`): pure functions over IPPool objects and node labels.
 */
import { type Cidr, type Family, cidrContains, parseCidr } from './cidr.js';
import { IpamError } from './errors.js';
import type { AllowedUse, IPPool } from './types.js';

export type IntendedUse = 'Workload' | 'Tunnel';

/** A pool with Calico's defaults applied. */
export interface PoolInfo {
  name: string;
  cidrText: string;
  cidr: Cidr;
  blockSize: number;
  disabled: boolean;
  nodeSelector: string;
  allowedUses: AllowedUse[];
  manual: boolean;
}

export type SelectorMatcher = (selector: string, labels: Record<string, string>) => boolean;

export function poolInfo(p: IPPool): PoolInfo {
  const cidr = parseCidr(p.spec.cidr);
  return {
    name: p.metadata.name,
    cidrText: p.spec.cidr,
    cidr,
    blockSize: p.spec.blockSize ?? (cidr.family === 4 ? 26 : 122),
    disabled: p.spec.disabled ?? false,
    nodeSelector: p.spec.nodeSelector ?? 'all()',
    allowedUses: p.spec.allowedUses ?? ['Workload', 'Tunnel'],
    manual: p.spec.assignmentMode === 'Manual',
  };
}

/**
 * A small selector evaluator for the forms pools use: `all()`, empty, and `&&`-joined terms
 * `k == 'v'`, `k != 'v'`, `has(k)`, `!has(k)`, `k in {'a','b'}`, `k not in {…}`. Pass the full
 * Calico selector engine as `matchSelector` to Ipam for anything richer.
 */
export const simpleSelectorMatcher: SelectorMatcher = (selector, labels) => {
  const s = selector.trim();
  if (s === '' || s === 'all()') return true;
  return s.split('&&').every((raw) => {
    const term = raw.trim();
    let m = /^(!?)has\(\s*([\w./-]+)\s*\)$/.exec(term);
    if (m) return (m[2]! in labels) !== (m[1] === '!');
    m = /^([\w./-]+)\s*(==|!=)\s*['"]([^'"]*)['"]$/.exec(term);
    if (m) return (labels[m[1]!] === m[3]) === (m[2] === '==');
    m = /^([\w./-]+)\s+(not\s+)?in\s*\{([^}]*)\}$/.exec(term);
    if (m) {
      const set = m[3]!.split(',').map((x) => x.trim().replace(/^['"]|['"]$/g, ''));
      const v = labels[m[1]!];
      return (v !== undefined && set.includes(v)) !== (m[2] !== undefined);
    }
    throw new IpamError('InvalidConfig', `unsupported pool selector term ${JSON.stringify(term)}`);
  });
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
