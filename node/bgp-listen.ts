/**
 * BGP listening sockets of tabby-node: IPv4 sessions on 0.0.0.0 and, with IPv6 on this node, a
 * second v6-only listener on `::` on the same port (Calico/BIRD runs separate IPv6 sessions). TCP-MD5
 * keys and GTSM live on the listening socket of the peer's family, so per-peer settings are routed
 * to that listener.
 */
import type net from 'node:net';
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import { BgpListener } from '../bgp/net/index.js';
import type { BGPConfiguration } from '../api/types.js';
import { NotFoundError, type Datastore } from '../datastore/types.js';

export interface NodeBgpListeners {
  /** Resolves once every listener is bound (true) or has logged why it could not be (false). */
  ready: Promise<boolean>;
  /** Per-peer socket options, dispatched by the peer address's family (for SessionTransports). */
  options: Pick<BgpListener, 'setPeerPassword' | 'setPeerTtlSecurity'>;
  close(): Promise<void>;
}

export function openBgpListeners(accept: (s: net.Socket) => void, port: number, ipv6: boolean, log: Logger): NodeBgpListeners {
  const v4 = new BgpListener(accept);
  const v6 = ipv6 ? new BgpListener(accept) : undefined;
  const bind = (l: BgpListener, address: string, what: string, opts: { ipv6Only?: boolean } = {}): Promise<boolean> =>
    l.listen(address, port, opts).then(
      (a) => {
        log.info(a, `listening for ${what} BGP connections`);
        return true;
      },
      (err: unknown) => {
        log.error({ err: errorMessage(err), port }, `cannot listen for ${what} BGP; outgoing ${what} sessions only`);
        return false;
      },
    );
  const ready = Promise.all([bind(v4, '0.0.0.0', 'IPv4'), v6 ? bind(v6, '::', 'IPv6', { ipv6Only: true }) : true]).then((ok) => ok.every(Boolean));
  const of = (peer: string): BgpListener => (peer.includes(':') && v6 ? v6 : v4);
  return {
    ready,
    options: {
      setPeerPassword: (peer, pw) => of(peer).setPeerPassword(peer, pw),
      setPeerTtlSecurity: (peer, hops) => of(peer).setPeerTtlSecurity(peer, hops),
    },
    close: async () => {
      await Promise.all([v4.close(), v6?.close()]);
    },
  };
}

/** What a held connection needs to be handed over: the peer's configuration by its address. */
export interface HeldPeer {
  address: string;
  password?: string;
  ttlSecurity?: number;
}

/**
 * BGP listeners opened before the agent registers its Node (node/main.ts). Peers learn the Node
 * from the datastore and connect at once; without a listener yet they get "connection refused" and
 * wait a connect-retry interval (2 s) — at mesh start that was most active sessions. Connections
 * accepted before the speaker exists are held (unread) and handed over by `deliver()` once
 * the speaker has registered its peers (the peer's OPEN waits in the socket buffer). A held connection from a peer configured with a password
 * (TCP-MD5) or ttlSecurity (GTSM) is closed instead: it was accepted before the listening socket
 * carried that peer's key / minimum TTL, so the kernel did not check it. The peer reconnects.
 */
export class EarlyBgpListeners {
  private held: net.Socket[] = [];
  private target: ((s: net.Socket) => void) | undefined;
  readonly listeners: NodeBgpListeners;

  constructor(
    readonly port: number,
    ipv6: boolean,
    log: Logger,
    open: typeof openBgpListeners = openBgpListeners,
  ) {
    this.listeners = open((s) => this.accept(s), port, ipv6, log);
  }

  private accept(s: net.Socket): void {
    if (this.target) return this.target(s);
    // Not paused: unread bytes stay in the stream's buffer until the session attaches its reader.
    s.on('error', () => undefined); // a held connection reset by the peer: dropped on delivery
    this.held.push(s);
  }

  /** Connections held so far (tests). */
  get holding(): number {
    return this.held.length;
  }

  /** From now on connections go to `to`; held ones too, unless `peers` says they must be refused. */
  deliver(to: (s: net.Socket) => void, peers: readonly HeldPeer[]): void {
    this.target = to;
    const held = this.held;
    this.held = [];
    const byAddress = new Map(peers.map((p) => [p.address, p]));
    for (const s of held) {
      const remote = (s.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
      const p = byAddress.get(remote);
      if (s.destroyed || (p && (p.password !== undefined || p.ttlSecurity !== undefined))) {
        s.destroy();
        continue;
      }
      to(s);
    }
  }

  /** Drop held connections and close the listeners (BGP is not run, or on another port). */
  async close(): Promise<void> {
    for (const s of this.held) s.destroy();
    this.held = [];
    await this.listeners.close();
  }
}

/**
 * The early BGP listeners (EarlyBgpListeners above) on BGPConfiguration default's
 * listenPort (`defaultPort`, 179, when unset). Not opened when that cannot be read yet: the speaker then opens its
 * listeners when it starts, as without this.
 */
export async function openEarlyListeners(ds: Pick<Datastore, 'get'>, defaultPort: number, ipv6: boolean, log: Logger): Promise<EarlyBgpListeners | undefined> {
  let port = defaultPort;
  try {
    port = (await ds.get<BGPConfiguration>('BGPConfiguration', 'default')).spec.listenPort ?? defaultPort;
  } catch (err) {
    if (!(err instanceof NotFoundError)) return undefined;
  }
  const early = new EarlyBgpListeners(port, ipv6, log);
  if (await early.listeners.ready) return early;
  await early.close();
  return undefined;
}

/**
 * A logger whose info lines are dropped when `drop(fields, msg)` says so (children too); at debug
 * level nothing is dropped.
 */
function dropInfo(log: Logger, drop: (fields: Record<string, unknown>, msg: string) => boolean): Logger {
  if (log.isLevelEnabled('debug')) return log;
  const filtered = (l: Logger): Logger =>
    Object.assign(Object.create(l) as Logger, {
      child: (bindings: Record<string, unknown>) => filtered(l.child(bindings)),
      info: (...a: unknown[]) => {
        const fields = typeof a[0] === 'object' && a[0] !== null ? (a[0] as Record<string, unknown>) : {};
        const msg = typeof a[1] === 'string' ? a[1] : typeof a[0] === 'string' ? a[0] : '';
        if (drop(fields, msg)) return;
        (l.info as (...x: unknown[]) => void).apply(l, a);
      },
    });
  return filtered(log);
}

/**
 * The logger BGP sessions get: their state transitions are logged once, by the speaker (`peer <ip>
 * A -> B`, with the same reason and detail — NOTIFICATION names included), so the sessions' own copy
 * of each transition and NOTIFICATION line is dropped at info level; everything else passes, and at
 * debug level nothing is dropped. At mesh start that is half of the agent's log lines (99 peers ×
 * ≈ 6 transitions).
 */
export function sessionLogger(log: Logger): Logger {
  return dropInfo(log, (_f, msg) => msg.includes(' -> ') || msg.startsWith('NOTIFICATION '));
}

/**
 * The logger the BGP speaker gets: at info level a session's way up is one line, `… -> Established`;
 * the steps before it (Idle → Active/Connect → OpenSent → OpenConfirm) are debug. Every transition
 * that leaves Established or carries a reason's detail (connection refused, a NOTIFICATION, a hold
 * timer) is kept, as is everything else the speaker logs.
 */
export function speakerLogger(log: Logger): Logger {
  return dropInfo(log, (f, msg) => msg.startsWith('peer ') && msg.includes(' -> ') && f.to !== 'Established' && f.from !== 'Established' && f.detail === undefined);
}
