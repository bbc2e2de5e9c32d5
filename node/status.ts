/**
 * Node status: the JSON snapshot served on `<run_dir>/status.sock` (mode 0600), the client that
 * reads it, and the formatter `tabbyctl node status` prints (Calico's shape).
 */
import { createServer, createConnection, type Server } from 'node:net';
import { unlink } from 'node:fs/promises';
import { listenPrivate } from '../lib/private-socket.js';
import { join } from 'node:path';
import { TabbyError } from '../lib/errors.js';
import type { PeerKind } from './bgp-config.js';

export interface PeerSnapshot {
  address: string;
  port?: number;
  type: PeerKind;
  /** BGP FSM state: Idle, Connect, Active, OpenSent, OpenConfirm, Established. */
  state: string;
  /** ISO time of the last state change. */
  since: string;
  /** The real reason: Established, Socket: Connection refused, MD5 mismatch, Bad peer AS, Passive… */
  info: string;
}

export interface NodeStatusSnapshot {
  nodeName: string;
  pid: number;
  startedAt: string;
  ip: { cidr?: string; source: string; explanation: string[] };
  /** The node's IPv6 address (absent from agents that predate IPv6 support). */
  ip6?: { cidr?: string; source: string; explanation: string[] };
  /** `gracefulRestart`: this start's graceful-restart role (node/graceful.ts), absent from older agents. */
  bgp: { enabled: boolean; reason?: string; routerId?: string; asNumber?: number; peers: PeerSnapshot[]; exports: string[]; gracefulRestart?: string };
  health: { live: boolean; ready: boolean; components: Record<string, { ready: boolean; detail?: string }> };
}

export const STATUS_SOCKET = 'status.sock';

export class StatusUnavailableError extends TabbyError {}

export interface StatusServer {
  path: string;
  close(): Promise<void>;
}

/** Serve `snapshot()` as one JSON document per connection on `<runDir>/status.sock`, root-only. */
export async function startStatusServer(runDir: string, snapshot: () => NodeStatusSnapshot): Promise<StatusServer> {
  const path = join(runDir, STATUS_SOCKET);
  const srv: Server = createServer((sock) => {
    sock.on('error', () => undefined);
    let body: string;
    try {
      body = JSON.stringify(snapshot());
    } catch (err) {
      body = JSON.stringify({ error: String(err) });
    }
    sock.end(`${body}\n`);
  });
  await listenPrivate(srv, path);
  return {
    path,
    close: async () => {
      await new Promise<void>((r) => srv.close(() => r()));
      await unlink(path).catch(() => undefined);
    },
  };
}

/** Read one snapshot from the socket. StatusUnavailableError (code NodeNotRunning) when nobody answers. */
export async function readStatus(runDir: string, timeoutMs = 5000): Promise<NodeStatusSnapshot> {
  const path = join(runDir, STATUS_SOCKET);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = createConnection(path);
    const timer = setTimeout(() => sock.destroy(new Error('timed out')), timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new StatusUnavailableError('NodeNotRunning', `tabby-node is not running (no answer on ${path}: ${err.code ?? err.message})`, {
          hint: 'start tabby-node, or pass --run-dir matching its TABBY_RUN_DIR; the socket is root-only',
          cause: err,
        }),
      );
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as NodeStatusSnapshot);
      } catch (err) {
        reject(new StatusUnavailableError('BadStatus', `unreadable status from ${path}`, { hint: 'is this a tabby-node socket?', cause: err }));
      }
    });
  });
}

/** go-pretty style: upper-case centred header, left-aligned cells. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const centre = (s: string, w: number): string => {
    const left = Math.floor((w - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
  };
  const head = `| ${header.map((h, i) => centre(h.toUpperCase(), widths[i]!)).join(' | ')} |`;
  const body = rows.map((r) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`);
  return [line, head, line, ...body, line].join('\n');
}

/** BIRD's protocol state column: up when Established, start otherwise. */
export function birdState(state: string): string {
  return state === 'Established' ? 'up' : state === 'Idle' ? 'start' : 'start';
}

/** `HH:MM:SS` today, `YYYY-MM-DD` when older than a day (UTC, as the log). */
export function formatSince(iso: string, now: Date): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  if (now.getTime() - t.getTime() > 86_400_000) return t.toISOString().slice(0, 10);
  return t.toISOString().slice(11, 19);
}

export function formatNodeStatus(s: NodeStatusSnapshot, now = new Date(), verbose = false): string {
  const out: string[] = ['tabby-node is running.', ''];
  out.push(`Node name: ${s.nodeName}`);
  out.push(`IPv4 address: ${s.ip.cidr ?? 'none'}`);
  out.push(`  chosen ${s.ip.source}`);
  if (verbose || !s.ip.cidr) for (const l of s.ip.explanation) out.push(`    ${l}`);
  if (s.ip6) {
    out.push(`IPv6 address: ${s.ip6.cidr ?? 'none'}`);
    out.push(`  chosen ${s.ip6.source}`);
    if (verbose) for (const l of s.ip6.explanation) out.push(`    ${l}`);
  }
  out.push(`Readiness: ${s.health.ready ? 'ready' : 'not ready'}`);
  if (!s.health.ready) {
    for (const [name, c] of Object.entries(s.health.components)) if (!c.ready) out.push(`  ${name}: ${c.detail ?? 'not ready'}`);
  }
  out.push('');
  out.push('IPv4 BGP status');
  const v4 = s.bgp.peers.filter((p) => !p.address.includes(':'));
  if (!s.bgp.enabled) out.push(`BGP is not running on this node${s.bgp.reason ? ` (${s.bgp.reason})` : ''}.`);
  else if (v4.length === 0) out.push('No IPv4 peers found.');
  else {
    out.push(
      renderTable(
        ['Peer address', 'Peer type', 'State', 'Since', 'Info'],
        v4.map((p) => [p.port && p.port !== 179 ? `${p.address} port ${p.port}` : p.address, p.type, birdState(p.state), formatSince(p.since, now), p.info]),
      ),
    );
  }
  if (s.bgp.enabled && s.bgp.gracefulRestart && (verbose || /restarting/.test(s.bgp.gracefulRestart))) out.push(`Graceful restart: ${s.bgp.gracefulRestart}`);
  out.push('');
  out.push('IPv6 BGP status');
  const v6 = s.bgp.peers.filter((p) => p.address.includes(':'));
  if (v6.length === 0) out.push('No IPv6 peers found.');
  else out.push(renderTable(['Peer address', 'Peer type', 'State', 'Since', 'Info'], v6.map((p) => [p.port && p.port !== 179 ? `${p.address} port ${p.port}` : p.address, p.type, birdState(p.state), formatSince(p.since, now), p.info])));
  out.push('');
  return out.join('\n');
}
