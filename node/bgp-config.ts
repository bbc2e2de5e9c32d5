/**
 * Pure computation of this node's BGP session set and exported prefixes from the datastore view,
 * following Calico's confd/bgp_processor rules (reference calico.md §5.2–5.3).
 */
import ipaddr from 'ipaddr.js';
import { canonicalCidr, cidrContains, ipToString, parseCidr, parseIP, parsePeerIP } from '../api/net.js';
import { parseSelector } from '../api/selector.js';
import { DEFAULT_AS_NUMBER, DEFAULT_BGP_PORT } from '../api/defaults.js';
import type { BGPConfiguration, BGPPeer, BlockAffinity, IPAMBlock, IPPool, Node, SecretKeyRef } from '../api/types.js';
import { parseDurationSec } from './config.js';

export type PeerKind = 'node-to-node mesh' | 'global' | 'node specific';

export interface ComputedPeer {
  /** Calico's protocol name: `Mesh_10_0_0_2`, `Global_10_0_0_9_port_1179`, `Node_…`. */
  name: string;
  type: PeerKind;
  address: string;
  port?: number;
  asNumber: number;
  localAsNumber?: number;
  passive?: boolean;
  password?: string;
  ttlSecurity?: number;
  /** `multihop` for iBGP/ mesh (BIRD `multihop`), undefined = direct. */
  sourceAddress?: string;
  routeReflectorClient?: boolean;
  nextHopMode?: 'Self' | 'Keep';
  gracefulRestartTime?: number;
  keepaliveTime?: number;
  allowLocalAs?: number;
  reachableBy?: string;
  filters?: string[];
  /** The Node resource behind a mesh/peerSelector peer. */
  node?: string;
  /** The BGPPeer resource this came from. */
  source?: string;
}

export interface BgpInputs {
  nodeName: string;
  nodes: readonly Node[];
  peers: readonly BGPPeer[];
  /** BGPConfiguration `default` (or undefined). */
  config?: BGPConfiguration;
  affinities: readonly BlockAffinity[];
  blocks: readonly IPAMBlock[];
  pools: readonly IPPool[];
  /** Secret lookup (KDD: Secret in the calico namespace; etcd: resolver returns undefined unless configured). */
  secret?: (ref: SecretKeyRef) => string | undefined;
  /** CALICO_ROUTER_ID: IPv4 or `hash`. */
  routerId?: string;
}

export interface BgpPlan {
  /** false: this node has neither an IPv4 nor an IPv6 address, BGP is not run. */
  enabled: boolean;
  reason?: string;
  routerId: string;
  asNumber: number;
  listenPort: number;
  nodeIP?: string;
  /** This node's IPv6 address: the source of its IPv6 sessions (Calico/BIRD runs separate v6 sessions). */
  nodeIP6?: string;
  clusterId?: string;
  peers: ComputedPeer[];
  /** Prefixes to originate: confirmed affine blocks (aggregated, v4 and v6) + borrowed /32s and /128s. */
  exports: string[];
  /** Blocks we blackhole locally (= the confirmed affine blocks). */
  blackholes: string[];
}

function ipOf(n: Node, family: 4 | 6 = 4): string | undefined {
  const a = family === 4 ? n.spec?.bgp?.ipv4Address : n.spec?.bgp?.ipv6Address;
  if (!a) return undefined;
  const slash = a.indexOf('/');
  return slash < 0 ? a : a.slice(0, slash);
}

function protoName(prefix: string, ip: string, port: number | undefined): string {
  const base = `${prefix}_${ip.replace(/[.:]/g, '_')}`;
  return port !== undefined && port !== DEFAULT_BGP_PORT ? `${base}_port_${port}` : base;
}

/** Router id from the node name (CALICO_ROUTER_ID=hash): FNV-1a 32, shown as a dotted quad. */
export function hashRouterId(nodeName: string): string {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(nodeName)) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return [h >>> 24, (h >>> 16) & 255, (h >>> 8) & 255, h & 255].join('.');
}

function durationSec(d: string | undefined): number | undefined {
  if (!d) return undefined;
  try {
    return Math.round(parseDurationSec('duration', d));
  } catch {
    return undefined;
  }
}

function nodeLabels(n: Node): Record<string, string> {
  return n.metadata.labels ?? {};
}

/** Compute the BGP plan for `inputs.nodeName`. */
export function computeBgpPlan(inp: BgpInputs): BgpPlan {
  const cfg = inp.config?.spec ?? {};
  const globalAs = cfg.asNumber ?? DEFAULT_AS_NUMBER;
  const me = inp.nodes.find((n) => n.metadata.name === inp.nodeName);
  const myIP = me ? ipOf(me) : undefined;
  const myIP6 = me ? ipOf(me, 6) : undefined;
  const myAs = me?.spec?.bgp?.asNumber ?? globalAs;
  const listenPort = cfg.listenPort ?? DEFAULT_BGP_PORT;
  const routerId = inp.routerId === 'hash' ? hashRouterId(inp.nodeName) : (inp.routerId ?? myIP ?? hashRouterId(inp.nodeName));
  const plan: BgpPlan = { enabled: false, routerId, asNumber: myAs, listenPort, peers: [], exports: [], blackholes: [] };
  if (!me || (!myIP && !myIP6)) {
    plan.reason = me ? 'this node has no IPv4 or IPv6 address (IP=none, IP6=none?)' : 'this node has no Node resource yet';
    return plan;
  }
  plan.enabled = true;
  if (myIP) plan.nodeIP = myIP;
  if (myIP6) plan.nodeIP6 = myIP6;
  const mine = (family: 4 | 6): string | undefined => (family === 4 ? myIP : myIP6);
  const myCluster = me.spec?.bgp?.routeReflectorClusterID;
  if (myCluster) plan.clusterId = myCluster;

  const byIP = new Map<string, Node>();
  for (const n of inp.nodes) {
    for (const f of [4, 6] as const) {
      const ip = ipOf(n, f);
      if (ip) byIP.set(ip, n);
    }
  }
  const seen = new Set<string>();
  const add = (p: ComputedPeer): void => {
    const id = `${p.address}:${p.port ?? DEFAULT_BGP_PORT}`;
    if (p.address === myIP || p.address === myIP6 || seen.has(id)) return;
    seen.add(id);
    // We reflect to iBGP peers that are not reflectors of our own cluster.
    if (myCluster && p.asNumber === myAs) {
      const peerNode = p.node ? inp.nodes.find((n) => n.metadata.name === p.node) : byIP.get(p.address);
      if (peerNode?.spec?.bgp?.routeReflectorClusterID !== myCluster) p.routeReflectorClient = true;
    }
    plan.peers.push(p);
  };

  // Node-to-node mesh (skipped entirely when this node is a route reflector): one IPv4 session per
  // pair of nodes with IPv4 addresses, and one IPv6 session per pair with IPv6 addresses.
  if ((cfg.nodeToNodeMeshEnabled ?? true) && !myCluster) {
    const pw = cfg.nodeMeshPassword?.secretKeyRef ? inp.secret?.(cfg.nodeMeshPassword.secretKeyRef) : undefined;
    const grt = durationSec(cfg.nodeMeshMaxRestartTime);
    for (const f of [4, 6] as const) {
      const self = mine(f);
      if (!self) continue;
      const others = inp.nodes
        .filter((n) => n.metadata.name !== inp.nodeName && ipOf(n, f) && !n.spec?.bgp?.routeReflectorClusterID)
        .sort((a, b) => (ipOf(a, f)! < ipOf(b, f)! ? -1 : 1));
      for (const n of others) {
        const ip = ipOf(n, f)!;
        const p: ComputedPeer = {
          name: protoName('Mesh', ip, listenPort),
          type: 'node-to-node mesh',
          address: ip,
          asNumber: n.spec?.bgp?.asNumber ?? globalAs,
          sourceAddress: self,
          node: n.metadata.name,
        };
        if (listenPort !== DEFAULT_BGP_PORT) p.port = listenPort;
        // Unidirectional, as Calico: passive towards peers whose IP compares greater (string order).
        if (ip > self) p.passive = true;
        if (pw !== undefined) p.password = pw;
        if (grt !== undefined) p.gracefulRestartTime = grt;
        add(p);
      }
    }
  }

  // BGPPeer resources, in name order.
  const myLabels = nodeLabels(me);
  const sorted = [...inp.peers].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  for (const bp of sorted) {
    const s = bp.spec ?? {};
    const global = s.node === undefined && s.nodeSelector === undefined;
    if (s.node !== undefined && s.node !== inp.nodeName) continue;
    if (s.nodeSelector !== undefined && !safeMatch(s.nodeSelector, myLabels)) continue;
    const type: PeerKind = global ? 'global' : 'node specific';
    const prefix = global ? 'Global' : 'Node';
    const common = (p: ComputedPeer, self: string): ComputedPeer => {
      p.source = bp.metadata.name;
      if (s.localASNumber !== undefined) p.localAsNumber = s.localASNumber;
      if (s.password?.secretKeyRef) {
        const pw = inp.secret?.(s.password.secretKeyRef);
        if (pw !== undefined) p.password = pw;
      }
      if (s.ttlSecurity) p.ttlSecurity = s.ttlSecurity;
      if (s.sourceAddress !== 'None') p.sourceAddress = self;
      const grt = durationSec(s.maxRestartTime);
      if (grt !== undefined) p.gracefulRestartTime = grt;
      const ka = durationSec(s.keepaliveTime);
      if (ka !== undefined) p.keepaliveTime = ka;
      if (s.nextHopMode === 'Self') p.nextHopMode = 'Self';
      else if (s.nextHopMode === 'Keep' || s.keepOriginalNextHop) p.nextHopMode = 'Keep';
      if (s.numAllowedLocalASNumbers) p.allowLocalAs = s.numAllowedLocalASNumbers;
      if (s.reachableBy) p.reachableBy = s.reachableBy;
      if (s.filters?.length) p.filters = [...s.filters];
      return p;
    };
    if (s.peerIP) {
      const pi = parsePeerIP(s.peerIP);
      const addr = pi ? parseIP(pi.ip) : undefined;
      // A peer of a family this node has no address in cannot be reached from it (BIRD: no session).
      const self = addr ? mine(addr.kind() === 'ipv6' ? 6 : 4) : undefined;
      if (!pi || !self) continue;
      const p: ComputedPeer = { name: protoName(prefix, pi.ip, pi.port), type, address: pi.ip, asNumber: s.asNumber ?? myAs };
      if (pi.port !== undefined) p.port = pi.port;
      const n = byIP.get(pi.ip);
      if (n) p.node = n.metadata.name;
      add(common(p, self));
    } else if (s.peerSelector) {
      for (const f of [4, 6] as const) {
        const self = mine(f);
        if (!self) continue;
        for (const n of inp.nodes) {
          const ip = ipOf(n, f);
          if (!ip || n.metadata.name === inp.nodeName || !safeMatch(s.peerSelector, nodeLabels(n))) continue;
          const p: ComputedPeer = { name: protoName(prefix, ip, listenPort), type, address: ip, asNumber: n.spec?.bgp?.asNumber ?? globalAs, node: n.metadata.name };
          if (listenPort !== DEFAULT_BGP_PORT) p.port = listenPort;
          add(common(p, self));
        }
      }
    }
  }

  const { exports, blackholes } = computeExports(inp.nodeName, inp.affinities, inp.blocks, inp.pools);
  plan.exports = exports;
  plan.blackholes = blackholes;
  return plan;
}

function safeMatch(sel: string, labels: Record<string, string>): boolean {
  try {
    return parseSelector(sel).matches(labels);
  } catch {
    return false;
  }
}

/** An address as a number → `a.b.c.d/32` or the canonical IPv6 text `/128`. */
function hostCidr(n: bigint, family: 4 | 6): string {
  const bytes = family === 4 ? 4 : 16;
  const arr: number[] = [];
  for (let i = bytes - 1; i >= 0; i--) arr.push(Number((n >> BigInt(8 * i)) & 255n));
  return `${ipToString(ipaddr.fromByteArray(arr))}/${family === 4 ? 32 : 128}`;
}

function cmpCidr(a: string, b: string): number {
  const pa = parseCidr(a)!;
  const pb = parseCidr(b)!;
  if (pa.family !== pb.family) return pa.family - pb.family;
  const ba = pa.addr.toByteArray();
  const bb = pb.addr.toByteArray();
  for (let i = 0; i < ba.length; i++) if (ba[i] !== bb[i]) return (ba[i] ?? 0) - (bb[i] ?? 0);
  return pa.prefix - pb.prefix;
}

/**
 * Prefixes this node originates: every confirmed affine block, IPv4 and IPv6 (never per-pod /32s or
 * /128s inside it), minus blocks of pools with disableBGPExport, plus /32s and /128s this node
 * borrowed from blocks affine to other nodes.
 */
export function computeExports(
  nodeName: string,
  affinities: readonly BlockAffinity[],
  blocks: readonly IPAMBlock[],
  pools: readonly IPPool[],
): { exports: string[]; blackholes: string[] } {
  const poolOf = (cidr: string): IPPool | undefined => {
    const c = parseCidr(cidr);
    if (!c) return undefined;
    return pools.find((p) => {
      const pc = parseCidr(p.spec.cidr);
      return pc !== undefined && pc.family === c.family && pc.prefix <= c.prefix && cidrContains(pc, c.addr);
    });
  };
  const exported = (cidr: string): boolean => {
    const p = poolOf(cidr);
    return p === undefined || !(p.spec.disableBGPExport ?? false);
  };
  const mine = new Set<string>();
  for (const a of affinities) {
    if (a.spec.node !== nodeName || a.spec.deleted === 'true') continue;
    if (a.spec.state !== 'confirmed' && a.spec.state !== '') continue;
    const c = parseCidr(a.spec.cidr);
    if (!c) continue;
    mine.add(canonicalCidr(c));
  }
  const blackholes = [...mine].sort(cmpCidr);
  // Aggregation: drop blocks already covered by a wider exported block.
  const agg = blackholes.filter((b) => {
    const c = parseCidr(b)!;
    return !blackholes.some((o) => o !== b && parseCidr(o)!.prefix < c.prefix && cidrContains(parseCidr(o)!, c.addr));
  });
  const borrowed: string[] = [];
  const myAffinity = `host:${nodeName}`;
  for (const b of blocks) {
    if (b.spec.affinity === myAffinity || b.spec.deleted) continue;
    const c = parseCidr(b.spec.cidr);
    if (!c) continue;
    const base = c.addr.toByteArray().reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
    b.spec.allocations.forEach((attrIdx, ord) => {
      if (attrIdx === null || attrIdx === undefined) return;
      if (b.spec.attributes[attrIdx]?.secondary?.node !== nodeName) return;
      borrowed.push(hostCidr(base + BigInt(ord), c.family));
    });
  }
  const exports = [...agg, ...borrowed.sort(cmpCidr)].filter(exported);
  return { exports, blackholes };
}

/**
 * Session timers of tabby-node (seconds). RFC 4271's connect retry is 120 s; Calico's BIRD template
 * uses `connect retry time 5; error wait time 5,30`. At mesh start a peer whose Node resource is
 * already registered is often not listening yet and refuses; each refusal costs one retry interval
 * (with 120 s a session stayed down for two minutes). A refused SYN is cheap, so tabby-node retries
 * after 2 s (bench/mesh-scale.ts: 5 nodes all Established ≈ 3 s instead of ≈ 6.5 s with 5 s); the
 * connect timeout is capped at 80 % of it. The error back-off is Calico's: 5 s doubling up to 30 s.
 */
export const SESSION_TIMERS = { connectRetryTime: 2, idleHoldTime: 5, maxIdleHoldTime: 30 } as const;
