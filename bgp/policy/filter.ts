/**
 * Import/export policy in the shape of Calico's BGPFilter (projectcalico.org/v3): per family a list
 * of rules evaluated in order, the first matching rule decides; no match accepts. Plus the
 * communities/large communities BGPConfiguration.prefixAdvertisements attaches per CIDR.
 *
 * A rule is a set of conditions (all must hold) and an action; conditions are small named
 * predicates so the evaluation reads like the manifest.
 */
import ipaddr from 'ipaddr.js';
import { TabbyError } from '../../lib/errors.js';
import type { Family, PathAttributes } from '../types.js';
import type { PathSource } from '../rib/path.js';

export type MatchOperator = 'Equal' | 'NotEqual' | 'In' | 'NotIn';

export interface BgpFilterRule {
  action: 'Accept' | 'Reject';
  cidr?: string;
  matchOperator?: MatchOperator;
  prefixLength?: { min?: number; max?: number };
  /** "RemotePeers": only routes learned from BGP peers. */
  source?: 'RemotePeers';
  /** Glob on the interface a local route belongs to ("eth*"). */
  interface?: string;
  peerType?: 'eBGP' | 'iBGP';
  /** Communities the route must carry, "65000:100" or large "65000:1:2". */
  communities?: { values?: string[] } | string[];
  /** The AS_PATH must start with these ASNs. */
  asPathPrefix?: number[];
}

export interface BgpFilterSpec {
  exportV4?: BgpFilterRule[];
  importV4?: BgpFilterRule[];
  exportV6?: BgpFilterRule[];
  importV6?: BgpFilterRule[];
}

export interface BgpFilter {
  name: string;
  spec: BgpFilterSpec;
}

export interface PrefixAdvertisement {
  cidr: string;
  /** "65000:100" (community) or "65000:1:2" (large community). */
  communities: string[];
}

export class PolicyError extends TabbyError {
  constructor(message: string) {
    super('BGP_POLICY_INVALID', message, { hint: 'fix the BGPFilter / prefixAdvertisements value' });
  }
}

/** What a rule sees about a route. */
export interface RouteContext {
  family: Family;
  prefix: string;
  source: PathSource;
  attrs: Readonly<PathAttributes>;
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

const cidrCache = new Map<string, Cidr>();
function cidr(s: string): Cidr {
  let c = cidrCache.get(s);
  if (!c) {
    try {
      c = ipaddr.parseCIDR(s);
    } catch {
      throw new PolicyError(`invalid CIDR ${JSON.stringify(s)}`);
    }
    if (cidrCache.size > 10000) cidrCache.clear();
    cidrCache.set(s, c);
  }
  return c;
}

/** `inner` lies within `outer` (equal counts). */
export function prefixWithin(inner: string, outer: string): boolean {
  const [ia, il] = cidr(inner);
  const [oa, ol] = cidr(outer);
  if (ia.kind() !== oa.kind() || il < ol) return false;
  return ia.match([oa, ol] as never);
}

function samePrefix(a: string, b: string): boolean {
  const [aa, al] = cidr(a);
  const [ba, bl] = cidr(b);
  return al === bl && aa.kind() === ba.kind() && aa.match([ba, bl] as never);
}

export function parseCommunity(s: string): { kind: 'standard'; value: number } | { kind: 'large'; value: [number, number, number] } {
  const parts = s.split(':').map((x) => Number(x));
  const ok = (n: number, max: number) => Number.isInteger(n) && n >= 0 && n <= max;
  if (parts.length === 2 && ok(parts[0]!, 0xffff) && ok(parts[1]!, 0xffff))
    return { kind: 'standard', value: ((parts[0]! << 16) >>> 0) + parts[1]! };
  if (parts.length === 3 && parts.every((p) => ok(p, 0xffffffff)))
    return { kind: 'large', value: [parts[0]!, parts[1]!, parts[2]!] };
  throw new PolicyError(`invalid community ${JSON.stringify(s)} (want "a:b" or "a:b:c")`);
}

function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

type Condition = (r: RouteContext) => boolean;

function conditions(rule: BgpFilterRule): Condition[] {
  const out: Condition[] = [];
  if (rule.cidr !== undefined) {
    const c = rule.cidr;
    cidr(c);
    const op = rule.matchOperator ?? 'In';
    const min = rule.prefixLength?.min;
    const max = rule.prefixLength?.max;
    const lenOk = (p: string) => {
      const l = cidr(p)[1];
      return (min === undefined || l >= min) && (max === undefined || l <= max);
    };
    switch (op) {
      case 'Equal':
        out.push((r) => samePrefix(r.prefix, c));
        break;
      case 'NotEqual':
        out.push((r) => !samePrefix(r.prefix, c));
        break;
      case 'In':
        out.push((r) => prefixWithin(r.prefix, c) && lenOk(r.prefix));
        break;
      case 'NotIn':
        out.push((r) => !prefixWithin(r.prefix, c));
        break;
      default:
        throw new PolicyError(`unknown matchOperator ${JSON.stringify(op)}`);
    }
  } else if (rule.prefixLength) {
    const { min, max } = rule.prefixLength;
    out.push((r) => {
      const l = cidr(r.prefix)[1];
      return (min === undefined || l >= min) && (max === undefined || l <= max);
    });
  }
  if (rule.source === 'RemotePeers') out.push((r) => r.source.type !== 'local');
  if (rule.interface !== undefined) {
    const re = globToRegExp(rule.interface);
    out.push((r) => r.source.interfaceName !== undefined && re.test(r.source.interfaceName));
  }
  if (rule.peerType !== undefined) {
    const want = rule.peerType === 'eBGP' ? 'ebgp' : 'ibgp';
    out.push((r) => r.source.type === want);
  }
  const comms = Array.isArray(rule.communities) ? rule.communities : (rule.communities?.values ?? []);
  for (const s of comms) {
    const c = parseCommunity(s);
    if (c.kind === 'standard') out.push((r) => r.attrs.communities?.includes(c.value) ?? false);
    else
      out.push(
        (r) =>
          r.attrs.largeCommunities?.some((l) => l[0] === c.value[0] && l[1] === c.value[1] && l[2] === c.value[2]) ??
          false,
      );
  }
  if (rule.asPathPrefix?.length) {
    const want = rule.asPathPrefix;
    out.push((r) => {
      const flat: number[] = [];
      for (const s of r.attrs.asPath ?? []) flat.push(...s.asns);
      return want.every((a, i) => flat[i] === a);
    });
  }
  return out;
}

export interface CompiledRule {
  action: 'Accept' | 'Reject';
  matches: (r: RouteContext) => boolean;
}

export function compileRules(rules: readonly BgpFilterRule[]): CompiledRule[] {
  return rules.map((rule) => {
    if (rule.action !== 'Accept' && rule.action !== 'Reject')
      throw new PolicyError(`rule action must be Accept or Reject, got ${JSON.stringify(rule.action)}`);
    const conds = conditions(rule);
    return { action: rule.action, matches: (r) => conds.every((c) => c(r)) };
  });
}

export type Direction = 'import' | 'export';

/** The rules of several filters for one direction, compiled per family; first match wins across them. */
export class Policy {
  private readonly rules: Record<Family, CompiledRule[]>;

  constructor(filters: readonly BgpFilter[], direction: Direction) {
    const v4: BgpFilterRule[] = [];
    const v6: BgpFilterRule[] = [];
    for (const f of filters) {
      v4.push(...((direction === 'import' ? f.spec.importV4 : f.spec.exportV4) ?? []));
      v6.push(...((direction === 'import' ? f.spec.importV6 : f.spec.exportV6) ?? []));
    }
    this.rules = { 'ipv4-unicast': compileRules(v4), 'ipv6-unicast': compileRules(v6) };
  }

  /** Accept unless the first matching rule rejects. */
  accepts(r: RouteContext): boolean {
    for (const rule of this.rules[r.family]) if (rule.matches(r)) return rule.action === 'Accept';
    return true;
  }

  get empty(): boolean {
    return this.rules['ipv4-unicast'].length === 0 && this.rules['ipv6-unicast'].length === 0;
  }
}

/** Attaches prefixAdvertisements communities to exported routes inside each CIDR. */
export class PrefixAdvertisements {
  private readonly entries: Array<{ cidr: string; communities: number[]; large: Array<[number, number, number]> }>;

  constructor(ads: readonly PrefixAdvertisement[]) {
    this.entries = ads.map((a) => {
      cidr(a.cidr);
      const communities: number[] = [];
      const large: Array<[number, number, number]> = [];
      for (const s of a.communities) {
        const c = parseCommunity(s);
        if (c.kind === 'standard') communities.push(c.value);
        else large.push(c.value);
      }
      return { cidr: a.cidr, communities, large };
    });
  }

  /** `attrs` with the communities for `prefix` added (unchanged object when none apply). */
  apply(prefix: string, attrs: PathAttributes): PathAttributes {
    let out = attrs;
    for (const e of this.entries) {
      if (!prefixWithin(prefix, e.cidr)) continue;
      if (out === attrs) out = { ...attrs };
      const comms = [...(out.communities ?? [])];
      for (const c of e.communities) if (!comms.includes(c)) comms.push(c);
      const large = [...(out.largeCommunities ?? [])];
      for (const l of e.large) if (!large.some((x) => x[0] === l[0] && x[1] === l[1] && x[2] === l[2])) large.push(l);
      if (comms.length) out.communities = comms;
      if (large.length) out.largeCommunities = large;
    }
    return out;
  }
}
