/**
 * What BGPConfiguration adds to this node's advertisements, as Calico's bird_aggr/bird templates
 * (reference calico.md §1.6, §5.3), computed purely:
 * - service IP ranges: `serviceClusterIPs[]`, `serviceExternalIPs[]`, `serviceLoadBalancerIPs[]`
 *   CIDRs are originated by every node (Calico: static routes exported to every peer);
 * - communities: `prefixAdvertisements[] {cidr, communities[]}` attach communities — named in
 *   `communities[] {name, value}` or literal `a:b` / `a:b:c` — to every exported prefix inside
 *   the CIDR (Calico's `apply_communities()` in the export filter).
 */
import { canonicalCidr, cidrContains, parseCidr } from '../api/net.js';
import type { BGPConfigurationSpec } from '../api/types.js';
import type { EndpointsInfo, ServiceInfo } from '../datastore/kubernetes-core.js';

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

/** The Service/Endpoints fields used below (read by datastore/kubernetes-core.ts). */
export type ServiceView = ServiceInfo;
export type EndpointsView = EndpointsInfo;

function hostPrefix(ip: string): string | undefined {
  const c = parseCidr(`${ip}/${ip.includes(':') ? 128 : 32}`);
  return c ? canonicalCidr(c) : undefined;
}

/**
 * Per-service host routes (/32, /128) this node advertises, as Calico's confd route generator:
 * - Services of type ClusterIP/NodePort/LoadBalancer with a cluster IP;
 * - externalTrafficPolicy Local: only when this node has a ready endpoint of the Service's family;
 * - externalTrafficPolicy Cluster: only when a LoadBalancer IP or an external IP matches a
 *   single-address (/32, /128) entry of serviceLoadBalancerIPs / serviceExternalIPs;
 * - the routes: the cluster IP (when serviceClusterIPs is set), external IPs inside
 *   serviceExternalIPs, load-balancer ingress IPs inside serviceLoadBalancerIPs.
 */
export function serviceHostRoutes(nodeName: string, spec: BGPConfigurationSpec | undefined, services: readonly ServiceView[], endpoints: readonly EndpointsView[]): string[] {
  const nets = (l: Array<{ cidr: string }> | undefined) => (l ?? []).map((x) => parseCidr(x?.cidr ?? '')).filter((c) => c !== undefined);
  const ext = nets(spec?.serviceExternalIPs);
  const lb = nets(spec?.serviceLoadBalancerIPs);
  const clusterOn = (spec?.serviceClusterIPs ?? []).length > 0;
  if (!clusterOn && ext.length === 0 && lb.length === 0) return [];
  const inside = (ip: string | undefined, list: typeof ext, single = false): boolean => {
    const a = ip ? parseCidr(`${ip}/${ip.includes(':') ? 128 : 32}`) : undefined;
    return a !== undefined && list.some((n) => n.family === a.family && cidrContains(n, a.addr) && (!single || n.prefix === (n.family === 4 ? 32 : 128)));
  };
  const eps = new Map(endpoints.map((e) => [`${e.namespace}/${e.name}`, e]));
  const out = new Set<string>();
  for (const svc of services) {
    const type = svc.type ?? 'ClusterIP';
    if (!['ClusterIP', 'NodePort', 'LoadBalancer'].includes(type) || !svc.clusterIP || svc.clusterIP === 'None') continue;
    const ingress = svc.loadBalancerIngressIPs ?? [];
    const policy = svc.externalTrafficPolicy ?? 'Cluster';
    let advertise = false;
    if (policy === 'Cluster') {
      advertise =
        (type === 'LoadBalancer' && [svc.loadBalancerIP, ...ingress].some((ip) => inside(ip, lb, true))) || (svc.externalIPs ?? []).some((ip) => inside(ip, ext, true));
    } else if (policy === 'Local') {
      const v6 = svc.clusterIP.includes(':');
      advertise = (eps.get(`${svc.namespace}/${svc.name}`)?.addresses ?? []).some((a) => a.nodeName === nodeName && a.ip.includes(':') === v6);
    }
    if (!advertise) continue;
    const ips = [...(clusterOn ? [svc.clusterIP] : []), ...(svc.externalIPs ?? []).filter((ip) => inside(ip, ext)), ...ingress.filter((ip) => inside(ip, lb))];
    for (const ip of ips) {
      const p = hostPrefix(ip);
      if (p) out.add(p);
    }
  }
  return [...out].sort();
}
