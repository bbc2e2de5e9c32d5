/**
 * Status and route-listing snapshots (plain JSON: served on the daemon's status socket) and the
 * client-side formatting that `tabbyctl bgp status` / `tabbyctl node status` / `tabbyctl bgp
 * routes` print. No I/O here.
 */
import type { BgpState } from '../session/fsm.js';
import type { Family } from '../types.js';

export interface PeerStatus {
  id: string;
  address: string;
  port: number;
  asNumber: number;
  /** "node-to-node mesh", "global", … or iBGP/eBGP when no description is configured. */
  peerType: string;
  state: BgpState;
  /** ISO time of the last state change. */
  since: string;
  /** Why the peer is in this state (reason of the last transition or last error). */
  info: string;
  lastError?: string;
  routeReflectorClient: boolean;
  prefixes: { received: number; accepted: number; advertised: number };
  /** Negotiated capabilities, e.g. ["ipv4-unicast", "as4", "route-refresh", "graceful-restart", "add-path rx ipv4-unicast"]. */
  capabilities: string[];
  holdTime?: number;
  peerRouterId?: string;
  /** Its routes are kept stale by the graceful-restart helper. */
  gracefulRestartStale: boolean;
  /** Route operations from this peer waiting for the RIB (absent when none). */
  pendingRoutes?: number;
  /** Inbound flow control: we stopped reading from the peer until the RIB catches up. */
  inputPaused?: boolean;
  /** How many times we paused reading from this peer (absent when never). */
  inputPauses?: number;
}

export interface SpeakerStatus {
  routerId: string;
  asNumber: number;
  listen?: { address?: string; port: number };
  /** Restarting role: advertisements held until End-of-RIB (or the bound). */
  deferringAdvertisements: boolean;
  routes: Record<Family, number>;
  attributeSets: number;
  peers: PeerStatus[];
}

export interface RoutePath {
  from: string;
  nextHop?: string;
  asPath: string;
  origin: 'IGP' | 'EGP' | 'incomplete';
  localPref?: number;
  med?: number;
  communities: string[];
  originatorId?: string;
  clusterList?: string[];
  pathId: number;
  best: boolean;
  multipath: boolean;
  stale: boolean;
}

export interface RouteEntry {
  family: Family;
  prefix: string;
  /** The decision-process rule that chose the best path. */
  reason: string;
  paths: RoutePath[];
}

function pad(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const fmt = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |';
  const [head, ...body] = rows;
  return [line, fmt(head ?? []), line, ...body.map(fmt), line].join('\n');
}

/** "2026-11-23" when older than a day, else "08:01:02" (like BIRD's `show protocols`). */
export function formatSince(iso: string, now = new Date()): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  if (now.getTime() - t.getTime() > 86_400_000) return t.toISOString().slice(0, 10);
  return t.toISOString().slice(11, 19);
}

/** The peer table of `calicoctl node status`: PEER ADDRESS | PEER TYPE | STATE | SINCE | INFO. */
export function formatPeerTable(s: SpeakerStatus, now = new Date()): string {
  const rows = [['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO']];
  for (const p of s.peers) {
    const state = p.state === 'Established' ? 'up' : 'start';
    const info = p.state === 'Established' ? 'Established' : `${p.state}${p.info ? ` ${p.info}` : ''}`;
    rows.push([p.port === 179 ? p.address : `${p.address}:${p.port}`, p.peerType, state, formatSince(p.since, now), info]);
  }
  return pad(rows);
}

/** A longer per-peer report (counters and capabilities). */
export function formatPeerDetails(s: SpeakerStatus): string {
  const out = [`BGP router id ${s.routerId}, local AS ${s.asNumber}${s.deferringAdvertisements ? ' (graceful restart: deferring advertisements)' : ''}`];
  for (const p of s.peers) {
    out.push(
      `${p.id} AS${p.asNumber} ${p.state}${p.info ? ` (${p.info})` : ''}` +
        `  received ${p.prefixes.received} accepted ${p.prefixes.accepted} advertised ${p.prefixes.advertised}` +
        (p.capabilities.length ? `\n    capabilities: ${p.capabilities.join(', ')}` : '') +
        (p.lastError ? `\n    last error: ${p.lastError}` : ''),
    );
  }
  return out.join('\n');
}

const REASON_TEXT: Record<string, string> = {
  'only-path': 'only path',
  'local-pref': 'higher LOCAL_PREF',
  'local-origin': 'locally originated',
  'as-path-length': 'shorter AS_PATH',
  origin: 'lower ORIGIN',
  med: 'lower MED',
  'ebgp-over-ibgp': 'eBGP over iBGP',
  'cluster-list-length': 'shorter CLUSTER_LIST',
  'router-id': 'lower router id',
  'peer-address': 'lower peer address',
  'path-id': 'lower path id',
  equal: 'equal',
};

/** The Loc-RIB listing with best-path reasons (`tabbyctl bgp routes`). */
export function formatRoutes(routes: readonly RouteEntry[]): string {
  const rows = [['PREFIX', '', 'NEXT HOP', 'FROM', 'AS PATH', 'LPREF', 'MED', 'ORIGIN', 'COMMUNITIES', 'REASON']];
  for (const r of routes) {
    r.paths.forEach((p, i) => {
      const mark = (p.best ? '*>' : p.multipath ? '*=' : '  ') + (p.stale ? 'S' : '');
      rows.push([
        i === 0 ? r.prefix : '',
        mark,
        p.nextHop ?? '-',
        p.pathId ? `${p.from}#${p.pathId}` : p.from,
        p.asPath || '-',
        p.localPref === undefined ? '' : String(p.localPref),
        p.med === undefined ? '' : String(p.med),
        p.origin,
        p.communities.join(' '),
        p.best ? (REASON_TEXT[r.reason] ?? r.reason) : '',
      ]);
    });
  }
  return pad(rows) + '\n*> best  *= multipath (ECMP)  S stale (graceful restart)';
}
