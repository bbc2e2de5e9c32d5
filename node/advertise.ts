/**
 * What BGPConfiguration adds to this node's advertisements, as Calico's bird_aggr/bird templates
 * (reference calico.md §1.6, §5.3), computed purely:
 * - service IP ranges: `serviceClusterIPs[]`, `serviceExternalIPs[]`, `serviceLoadBalancerIPs[]`
 *   CIDRs are originated by every node (Calico: static routes exported to every peer);
 * - communities: `prefixAdvertisements[] {cidr, communities[]}` attach communities — named in
 *   `communities[] {name, value}` or literal `a:b` / `a:b:c` — to every exported prefix inside
 *   the CIDR (Calico's `apply_communities()` in the export filter).
 */
import { canonicalCidr, parseCidr } from '../api/net.js';
import type { BGPConfigurationSpec } from '../api/types.js';

/** One entry of the speaker's `prefixAdvertisements` (bgp/policy/filter.ts PrefixAdvertisement). */
export interface CommunityAdvertisement {
  cidr: string;
  /** Resolved values: `a:b` (standard) or `a:b:c` (large). */
  communities: string[];
}

export interface ConfigAdvertisements {
  /** Service CIDRs to originate (canonical, de-duplicated, config order). */
  services: string[];
  /** Community attachments for the speaker. */
  communities: CommunityAdvertisement[];
  /** Entries that were ignored, with why (shown in logs; validation normally rejects them earlier). */
  problems: string[];
}

const STANDARD = /^(\d+):(\d+)$/;
const LARGE = /^(\d+):(\d+):(\d+)$/;

/** `a:b` with 16-bit parts or `a:b:c` with 32-bit parts. */
export function isCommunityValue(v: string): boolean {
  const s = STANDARD.exec(v);
  if (s) return Number(s[1]) <= 0xffff && Number(s[2]) <= 0xffff;
  const l = LARGE.exec(v);
  return l !== null && [l[1], l[2], l[3]].every((x) => Number(x) <= 0xffffffff);
}

/** The service CIDRs every node advertises (both families; the speaker sends each to peers of its family). */
export function serviceAdvertisements(spec: BGPConfigurationSpec | undefined, problems: string[] = []): string[] {
  const out: string[] = [];
  for (const field of ['serviceClusterIPs', 'serviceExternalIPs', 'serviceLoadBalancerIPs'] as const) {
    for (const [i, s] of (spec?.[field] ?? []).entries()) {
      const c = parseCidr(s?.cidr ?? '');
      if (!c) {
        problems.push(`${field}[${i}]: ${JSON.stringify(s?.cidr)} is not a CIDR`);
        continue;
      }
      const canon = canonicalCidr(c);
      if (!out.includes(canon)) out.push(canon);
    }
  }
  return out;
}

/** `prefixAdvertisements` with community names replaced by their values. */
export function communityAdvertisements(spec: BGPConfigurationSpec | undefined, problems: string[] = []): CommunityAdvertisement[] {
  const named = new Map<string, string>();
  for (const c of spec?.communities ?? []) {
    if (!c?.name) continue;
    if (!isCommunityValue(c.value ?? '')) problems.push(`communities: ${JSON.stringify(c.name)} has an invalid value ${JSON.stringify(c.value)}`);
    else named.set(c.name, c.value);
  }
  const out: CommunityAdvertisement[] = [];
  for (const [i, a] of (spec?.prefixAdvertisements ?? []).entries()) {
    const c = parseCidr(a?.cidr ?? '');
    if (!c) {
      problems.push(`prefixAdvertisements[${i}]: ${JSON.stringify(a?.cidr)} is not a CIDR`);
      continue;
    }
    const values: string[] = [];
    for (const ref of a.communities ?? []) {
      const v = named.get(ref) ?? (isCommunityValue(ref) ? ref : undefined);
      if (v === undefined) problems.push(`prefixAdvertisements[${i}]: community ${JSON.stringify(ref)} is neither a name in communities nor a value a:b / a:b:c`);
      else if (!values.includes(v)) values.push(v);
    }
    if (values.length) out.push({ cidr: canonicalCidr(c), communities: values });
  }
  return out;
}

export function configAdvertisements(spec: BGPConfigurationSpec | undefined): ConfigAdvertisements {
  const problems: string[] = [];
  return { services: serviceAdvertisements(spec, problems), communities: communityAdvertisements(spec, problems), problems };
}

/** Block/borrowed exports followed by the service CIDRs not already among them. */
export function mergeOriginate(exports: readonly string[], services: readonly string[]): string[] {
  const seen = new Set(exports);
  return [...exports, ...services.filter((s) => !seen.has(s))];
}
