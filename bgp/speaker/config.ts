/**
 * Speaker configuration objects (what the daemon file and tabby-node hand to BgpSpeaker), the
 * peer id, and the per-peer difference used by setConfig() to leave unchanged peers alone.
 */
import type { BgpFilter, PrefixAdvertisement } from '../policy/filter.js';
import type { NextHopMode } from '../rib/rules.js';
import type { Family } from '../types.js';

export type AddPathsSetting = 'none' | 'receive' | 'send' | 'both';

export interface PeerConfig {
  address: string;
  /** Remote TCP port (default 179). */
  port?: number;
  asNumber: number;
  /** The AS we present to this peer (default: the global AS). */
  localAsNumber?: number;
  /** TCP-MD5 password (RFC 2385). Never logged. */
  password?: string;
  passive?: boolean;
  /** GTSM (RFC 5082): accept packets at most this many hops away (sets IP_MINTTL = 256 - N). */
  ttlSecurity?: number;
  /** eBGP multihop TTL. */
  multihop?: number;
  /** Local address to bind to for the outgoing connection. */
  sourceAddress?: string;
  routeReflectorClient?: boolean;
  addPaths?: AddPathsSetting;
  /** Graceful restart: our restart time announced to this peer; false disables GR for it. */
  gracefulRestart?: { restartTime: number } | false;
  holdTime?: number;
  keepaliveTime?: number;
  connectRetryTime?: number;
  nextHopMode?: NextHopMode;
  /** Next hops for families other than the session's address family (next hop self). */
  nextHopSelf?: { ipv4?: string; ipv6?: string };
  /** Accept paths carrying our AS up to N times (`allow local as N`). */
  allowLocalAs?: number;
  /** Cease 1 when the peer sends more accepted prefixes than this. */
  maxPrefixes?: number;
  /**
   * After Cease 1 (max prefixes) the session stays Idle this many seconds, then reconnects
   * (BIRD's `receive limit N action restart`). 0 = stay down until the configuration changes.
   * Default 60.
   */
  maxPrefixRestartTime?: number;
  families?: Family[];
  /** BGPFilter names applied to routes from / to this peer. */
  filters?: string[];
  /** Free-form label shown in status (e.g. "Node-to-node mesh", "Global"). */
  description?: string;
}

export interface OriginateConfig {
  prefix: string;
  /** "a:b" or "a:b:c" communities to attach. */
  communities?: string[];
  /** Interface the prefix belongs to (for BGPFilter `interface` rules). */
  interface?: string;
}

export interface SpeakerConfig {
  routerId: string;
  asNumber: number;
  /** Route-reflector cluster id; setting it (or having RR clients) makes us a reflector. */
  clusterId?: string;
  listen?: { address?: string; port: number };
  peers: PeerConfig[];
  originate?: Array<string | OriginateConfig>;
  filters?: BgpFilter[];
  prefixAdvertisements?: PrefixAdvertisement[];
  /**
   * Priority (kernel route metric) of routes no BGPFilter setPriority gave one, as seen by
   * BGPFilter `priority` matches. Default 1024 (Calico's ipv4/ipv6NormalRoutePriority).
   */
  routePriority?: number;
  /**
   * Inbound flow control: when more of a peer's route operations than this wait for the RIB, we
   * stop reading its socket (TCP backpressure) until half of them are done. Default 65536.
   */
  maxPendingRoutes?: number;
  /** ECMP: maximum paths installed per prefix (default 1). */
  maxPaths?: number;
  /**
   * Our restarting role: `restarting` when we (re)start with kernel routes kept (R bit, deferral);
   * `forwardingPreserved` when another component keeps the forwarding state across our restarts
   * (tabby-node: felix keeps the kernel routes), so the F bit is set even without our own FIB sink.
   */
  gracefulRestart?: { restarting?: boolean; deferralTime?: number; forwardingPreserved?: boolean };
}

export function peerId(p: Pick<PeerConfig, 'address' | 'port'>): string {
  return p.port !== undefined && p.port !== 179 ? `${p.address}:${p.port}` : p.address;
}

export function familiesOf(p: PeerConfig): Family[] {
  if (p.families?.length) return p.families;
  return [p.address.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast'];
}

/** Fields whose change needs a new session; the others are applied in place (policy, limits). */
const SESSION_FIELDS: ReadonlyArray<keyof PeerConfig> = [
  'asNumber',
  'localAsNumber',
  'password',
  'passive',
  'ttlSecurity',
  'multihop',
  'sourceAddress',
  'routeReflectorClient',
  'addPaths',
  'gracefulRestart',
  'holdTime',
  'keepaliveTime',
  'connectRetryTime',
  'families',
];

export interface PeerDiff {
  added: PeerConfig[];
  removed: string[];
  /** Needs a session reset. */
  reset: PeerConfig[];
  /** Only policy-level settings changed: applied without a reset. */
  updated: PeerConfig[];
}

/** Equal as JSON (undefined and absent are the same); primitives without serializing. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Field by field `same` (key order does not matter): every peer is compared on each reconfiguration. */
function samePeer(a: PeerConfig, b: PeerConfig): boolean {
  const ra = a as unknown as Record<string, unknown>;
  const rb = b as unknown as Record<string, unknown>;
  for (const k in ra) if (!same(ra[k], rb[k])) return false;
  for (const k in rb) if (!(k in ra) && rb[k] !== undefined) return false;
  return true;
}

export function diffPeers(prev: readonly PeerConfig[], next: readonly PeerConfig[]): PeerDiff {
  const before = new Map(prev.map((p) => [peerId(p), p]));
  const out: PeerDiff = { added: [], removed: [], reset: [], updated: [] };
  const seen = new Set<string>();
  for (const p of next) {
    const id = peerId(p);
    seen.add(id);
    const old = before.get(id);
    if (!old) out.added.push(p);
    else if (SESSION_FIELDS.some((f) => !same(old[f], p[f]))) out.reset.push(p);
    else if (!samePeer(old, p)) out.updated.push(p);
  }
  for (const id of before.keys()) if (!seen.has(id)) out.removed.push(id);
  return out;
}
