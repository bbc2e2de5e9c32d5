/**
 * Import/export policy in the shape of Calico's BGPFilter (projectcalico.org/v3): per family a list
 * of rules evaluated in order, the first matching rule decides; no match accepts. An Accept rule
 * may carry operations (add a community, prepend to the AS_PATH, set the priority = kernel route
 * metric) applied to the route it accepts. Plus the communities/large communities
 * BGPConfiguration.prefixAdvertisements attaches per CIDR.
 *
 * A rule is a set of conditions (all must hold) and an action; conditions are small named
 * predicates so the evaluation reads like the manifest.
 */
import ipaddr from 'ipaddr.js';
import { TabbyError } from '../../lib/errors.js';
import type { Family, PathAttributes } from '../types.js';
import { prependAs } from '../rib/rules.js';
import type { PathSource } from '../rib/path.js';

export type MatchOperator = 'Equal' | 'NotEqual' | 'In' | 'NotIn';

/** One route modification (exactly one field set), applied by an Accept rule before accepting. */
export interface BgpFilterOperation {
  /** Add a community ("a:b") or large community ("a:b:c"). */
  addCommunity?: { value: string };
  /** Prepend these ASNs, in this order, to the AS_PATH. */
  prependASPath?: { prefix: number[] };
  /** Set the route's priority (kernel route metric). */
  setPriority?: { value: number };
}

/** A rule of Calico's BGPFilter (BGPFilterRuleV4 / BGPFilterRuleV6). */
export interface BgpFilterRule {
  action: 'Accept' | 'Reject';
  /** Together with matchOperator (both or neither). */
  cidr?: string;
  matchOperator?: MatchOperator;
  /** Narrows a cidr match: lengths outside [min (default the cidr's), max (default 32/128)] do not match. */
  prefixLength?: { min?: number; max?: number };
  /** "RemotePeers": only routes learned from BGP peers. */
  source?: 'RemotePeers';
  /** Glob on the interface a local route belongs to ("eth*"). */
  interface?: string;
  peerType?: 'eBGP' | 'iBGP';
  /** The route must carry this community ("65000:100") or large community ("65000:1:2"). */
  communities?: { values: string[] };
  /** The AS_PATH must start with these ASNs. */
  asPathPrefix?: number[];
  /** The route's priority (kernel metric) must be this. */
  priority?: number;
  /** Modifications for matching routes; only with action Accept. */
  operations?: BgpFilterOperation[];
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

/** Priority of routes no filter gave one: Calico's ipv4/ipv6NormalRoutePriority default. */
export const DEFAULT_ROUTE_PRIORITY = 1024;

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
  /** The route's priority when `attrs` are export attributes (which never carry it). */
  priority?: number;
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

function hasLarge(list: ReadonlyArray<readonly [number, number, number]> | undefined, v: readonly [number, number, number]): boolean {
  return list?.some((l) => l[0] === v[0] && l[1] === v[1] && l[2] === v[2]) ?? false;
}

function cidrCondition(rule: BgpFilterRule, family: Family | undefined): Condition {
  const c = rule.cidr!;
  const op = rule.matchOperator;
  if (op === undefined) throw new PolicyError(`cidr ${c} needs a matchOperator (Equal, NotEqual, In or NotIn)`);
  const [addr, len] = cidr(c);
  if (family && (addr.kind() === 'ipv4') !== (family === 'ipv4-unicast')) {
    throw new PolicyError(`cidr ${c} is not an ${family === 'ipv4-unicast' ? 'IPv4' : 'IPv6'} network (V4 rules take IPv4, V6 rules IPv6)`);
  }
  // Calico's BIRD form: `net ~ [ cidr{min,max} ]`, min defaults to the cidr's length, max to the full length.
  const min = Math.max(len, rule.prefixLength?.min ?? len);
  const max = Math.min(addr.kind() === 'ipv4' ? 32 : 128, rule.prefixLength?.max ?? 128);
  const inSet = (p: string) => {
    const l = cidr(p)[1];
    return l >= min && l <= max && prefixWithin(p, c);
  };
  switch (op) {
    case 'Equal':
      return (r) => samePrefix(r.prefix, c);
    case 'NotEqual':
      return (r) => !samePrefix(r.prefix, c);
    case 'In':
      return (r) => inSet(r.prefix);
    case 'NotIn':
      return (r) => !inSet(r.prefix);
    default:
      throw new PolicyError(`unknown matchOperator ${JSON.stringify(op)}`);
  }
}

function conditions(rule: BgpFilterRule, family: Family | undefined, defaultPriority: number): Condition[] {
  const out: Condition[] = [];
  if (rule.cidr !== undefined) out.push(cidrCondition(rule, family));
  else if (rule.matchOperator !== undefined) throw new PolicyError('matchOperator needs a cidr');
  else if (rule.prefixLength !== undefined) throw new PolicyError('prefixLength needs a cidr');
  if (rule.source === 'RemotePeers') out.push((r) => r.source.type !== 'local');
  if (rule.interface !== undefined) {
    const re = globToRegExp(rule.interface);
    out.push((r) => r.source.interfaceName !== undefined && re.test(r.source.interfaceName));
  }
  if (rule.peerType !== undefined) {
    const want = rule.peerType === 'eBGP' ? 'ebgp' : 'ibgp';
    out.push((r) => r.source.type === want);
  }
  for (const s of rule.communities?.values ?? []) {
    const c = parseCommunity(s);
    if (c.kind === 'standard') out.push((r) => r.attrs.communities?.includes(c.value) ?? false);
    else out.push((r) => hasLarge(r.attrs.largeCommunities, c.value));
  }
  if (rule.asPathPrefix?.length) {
    const want = rule.asPathPrefix;
    out.push((r) => {
      const flat: number[] = [];
      for (const s of r.attrs.asPath ?? []) {
        flat.push(...s.asns);
        if (flat.length >= want.length) break;
      }
      return want.every((a, i) => flat[i] === a);
    });
  }
  if (rule.priority !== undefined) {
    const want = rule.priority;
    out.push((r) => (r.attrs.priority ?? r.priority ?? defaultPriority) === want);
  }
  return out;
}

type Operation = (a: PathAttributes) => void;

function compileOperation(op: BgpFilterOperation): Operation {
  const set = Object.keys(op).filter((k) => (op as Record<string, unknown>)[k] !== undefined);
  if (set.length !== 1) throw new PolicyError(`an operation sets exactly one of addCommunity, prependASPath, setPriority (got ${set.join(', ') || 'none'})`);
  if (op.addCommunity) {
    const c = parseCommunity(op.addCommunity.value);
    if (c.kind === 'standard') {
      return (a) => {
        if (!a.communities?.includes(c.value)) a.communities = [...(a.communities ?? []), c.value];
      };
    }
    return (a) => {
      if (!hasLarge(a.largeCommunities, c.value)) a.largeCommunities = [...(a.largeCommunities ?? []), c.value];
    };
  }
  if (op.prependASPath) {
    const asns = op.prependASPath.prefix;
    if (!asns.length || asns.some((x) => !Number.isInteger(x) || x < 0 || x > 0xffffffff)) throw new PolicyError(`prependASPath.prefix must be 1-10 AS numbers`);
    return (a) => {
      let path = a.asPath;
      for (let i = asns.length - 1; i >= 0; i--) path = prependAs(path, asns[i]!);
      a.asPath = path;
    };
  }
  if (op.setPriority) {
    const v = op.setPriority.value;
    if (!Number.isInteger(v) || v < 1 || v > 2147483646) throw new PolicyError(`setPriority.value must be 1..2147483646, got ${v}`);
    return (a) => {
      a.priority = v;
    };
  }
  throw new PolicyError('unknown operation');
}

export interface CompiledRule {
  action: 'Accept' | 'Reject';
  matches: (r: RouteContext) => boolean;
  /** Operations of an Accept rule (empty: accept unchanged). */
  operations: Operation[];
}

export interface CompileOptions {
  /** The family of the rule list (V4 rules must use IPv4 CIDRs…); undefined skips that check. */
  family?: Family;
  /** Priority of routes without one (priority matches); default DEFAULT_ROUTE_PRIORITY. */
  defaultPriority?: number;
}

export function compileRules(rules: readonly BgpFilterRule[], opts: CompileOptions = {}): CompiledRule[] {
  return rules.map((rule) => {
    if (rule.action !== 'Accept' && rule.action !== 'Reject')
      throw new PolicyError(`rule action must be Accept or Reject, got ${JSON.stringify(rule.action)}`);
    if (rule.operations?.length && rule.action !== 'Accept') throw new PolicyError('operations may only be used with action Accept');
    const conds = conditions(rule, opts.family, opts.defaultPriority ?? DEFAULT_ROUTE_PRIORITY);
    return { action: rule.action, matches: (r) => conds.every((c) => c(r)), operations: (rule.operations ?? []).map(compileOperation) };
  });
}

export type Direction = 'import' | 'export';

/**
 * What policy made of a route: `false` = rejected; otherwise the attributes to use (the same
 * object when no operation changed anything).
 */
export type PolicyResult = false | Readonly<PathAttributes>;

/** The rules of several filters for one direction, compiled per family; first match wins across them. */
export class Policy {
  private readonly rules: Record<Family, CompiledRule[]>;

  constructor(filters: readonly BgpFilter[], direction: Direction, opts: { defaultPriority?: number } = {}) {
    const v4: BgpFilterRule[] = [];
    const v6: BgpFilterRule[] = [];
    for (const f of filters) {
      v4.push(...((direction === 'import' ? f.spec.importV4 : f.spec.exportV4) ?? []));
      v6.push(...((direction === 'import' ? f.spec.importV6 : f.spec.exportV6) ?? []));
    }
    const common = opts.defaultPriority !== undefined ? { defaultPriority: opts.defaultPriority } : {};
    this.rules = {
      'ipv4-unicast': compileRules(v4, { ...common, family: 'ipv4-unicast' }),
      'ipv6-unicast': compileRules(v6, { ...common, family: 'ipv6-unicast' }),
    };
  }

  /** The first matching rule decides (Accept with its operations applied); no match accepts. */
  evaluate(r: RouteContext): PolicyResult {
    for (const rule of this.rules[r.family]) {
      if (!rule.matches(r)) continue;
      if (rule.action === 'Reject') return false;
      if (!rule.operations.length) return r.attrs;
      const out: PathAttributes = { ...r.attrs };
      for (const op of rule.operations) op(out);
      return out;
    }
    return r.attrs;
  }

  /** Accept unless the first matching rule rejects. */
  accepts(r: RouteContext): boolean {
    return this.evaluate(r) !== false;
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
      for (const l of e.large) if (!hasLarge(large, l)) large.push(l);
      if (comms.length) out.communities = comms;
      if (large.length) out.largeCommunities = large;
    }
    return out;
  }
}
