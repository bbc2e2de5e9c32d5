/**
 * The real PeerTransport: a bgp/session Session per peer, outgoing connections through bgp/net
 * connectPeer (MD5, GTSM, multihop TTL, source address) and incoming ones dispatched from one
 * BgpListener by peer address (MD5 keys and GTSM registered per peer on the listening socket).
 */
import type net from 'node:net';
import type { Logger } from '../../lib/log.js';
import { silentLogger } from '../../lib/log.js';
import { errorMessage } from '../../lib/errors.js';
import { familyOf, type Family } from '../types.js';
import { connectPeer, normalize, type BgpListener, type ConnectOptions } from '../net/index.js';
import { Session, type BgpSocket, type Clock } from '../session/session.js';
import type { LocalConfig } from '../session/negotiate.js';
import { notificationName } from '../codec/index.js';
import type { PeerConfig } from './config.js';
import type { PeerTransport, TransportFactory, TransportHandlers, TransportLocal } from './transport.js';

export interface SessionTransportOptions {
  /** Where MD5 keys / GTSM of incoming connections are set (a BgpListener, or one per family). */
  listener?: Pick<BgpListener, 'setPeerPassword' | 'setPeerTtlSecurity'>;
  logger?: Logger;
  clock?: Clock;
  /** Timers (seconds) for all sessions unless the peer sets its own. */
  connectRetryTime?: number;
  idleHoldTime?: number;
  /** Cap of the doubling idle-hold back-off (seconds). */
  maxIdleHoldTime?: number;
}

class SessionTransport implements PeerTransport {
  readonly session: Session;
  private chain: Promise<void> = Promise.resolve();
  private lastSocket: net.Socket | undefined;
  private lastNotification: string | undefined;
  private config: LocalConfig;

  constructor(
    readonly peer: PeerConfig,
    local: TransportLocal,
    private readonly h: TransportHandlers,
    private readonly registry: SessionTransports,
    opts: SessionTransportOptions,
  ) {
    const addPath: LocalConfig['addPath'] = {};
    for (const [f, v] of Object.entries(local.addPaths)) addPath[f as Family] = v;
    const config: LocalConfig = {
      localAs: local.asNumber,
      routerId: local.routerId,
      peerAs: peer.asNumber,
      holdTime: peer.holdTime ?? 90,
      ...(peer.keepaliveTime !== undefined ? { keepaliveTime: peer.keepaliveTime } : {}),
      families: local.families,
      addPath,
    };
    if (local.gracefulRestart) {
      config.gracefulRestart = {
        restartTime: local.gracefulRestart.restartTime,
        restarting: local.gracefulRestart.restarting,
        forwarding: local.gracefulRestart.forwarding,
      };
    }
    const connect: ConnectOptions = { host: peer.address };
    if (peer.port !== undefined) connect.port = peer.port;
    if (peer.sourceAddress !== undefined) connect.localAddress = peer.sourceAddress;
    if (peer.password !== undefined) connect.password = peer.password;
    if (peer.ttlSecurity !== undefined) connect.ttlSecurityHops = peer.ttlSecurity;
    else if (peer.multihop !== undefined) connect.ttl = peer.multihop;
    const sessionOpts: ConstructorParameters<typeof Session>[0] = {
      config,
      peerAddress: peer.address,
      passive: peer.passive === true,
      connect: async ({ timeoutMs }) => {
        const s = await connectPeer({ ...connect, timeoutMs });
        this.lastSocket = s;
        return s as unknown as BgpSocket;
      },
      logger: opts.logger ?? silentLogger(),
    };
    const retry = peer.connectRetryTime ?? opts.connectRetryTime;
    // The session caps its connect timeout below the retry time, so each attempt ends (and its
    // cause, e.g. "MD5 key mismatch", is reported) before the connect-retry timer replaces it.
    if (retry !== undefined) sessionOpts.connectRetryTime = retry;
    if (opts.idleHoldTime !== undefined) sessionOpts.idleHoldTime = opts.idleHoldTime;
    if (opts.maxIdleHoldTime !== undefined) sessionOpts.maxIdleHoldTime = opts.maxIdleHoldTime;
    if (opts.clock) sessionOpts.clock = opts.clock;
    this.config = config;
    this.session = new Session(sessionOpts);
    this.session.on('state', (c) => {
      const detail = c.detail ?? (c.reason === 'notification-received' ? this.lastNotification : undefined);
      this.h.state(c.from, c.to, c.reason, detail);
      if (c.from === 'Established' && c.to !== 'Established') {
        this.h.down(c.reason, detail);
      }
    });
    this.session.on('established', (neg) => {
      const la = this.lastSocket?.localAddress;
      this.h.established(neg, la ? normalize(la) : (peer.sourceAddress ?? ''));
    });
    this.session.on('update', (u) => this.h.update(u.update, u.treatAsWithdraw));
    this.session.on('routeRefresh', (m) => {
      const f = familyOf(m.afi, m.safi);
      if (f && m.subtype === 0) this.h.refresh?.(f);
    });
    this.session.on('notificationReceived', (n) => {
      this.lastNotification = `received ${notificationName(n.code, n.subcode)}${n.shutdownMessage ? `: ${n.shutdownMessage}` : ''}`;
    });
    this.session.on('notificationSent', (n) => {
      this.lastNotification = `sent ${notificationName(n.code, n.subcode)}`;
    });
  }

  start(): void {
    this.registry.register(this.peer, this);
    this.session.start();
  }

  stop(subcode: number, message?: string, data?: Uint8Array): void {
    const o: { subcode: number; shutdownMessage?: string; data?: Uint8Array } = { subcode };
    // RFC 9003: a shutdown communication only goes with Administrative Shutdown / Reset.
    if (message !== undefined && (subcode === 2 || subcode === 4)) o.shutdownMessage = message;
    if (data !== undefined) o.data = data;
    this.session.stop(o);
  }

  restartDone(): void {
    const gr = this.config.gracefulRestart;
    if (!gr?.restarting) return;
    this.config = { ...this.config, gracefulRestart: { ...gr, restarting: false } };
    this.session.setConfig(this.config);
  }

  dispose(): void {
    this.registry.unregister(this.peer, this);
  }

  pauseInput(): void {
    this.session.pauseInput();
  }

  resumeInput(): void {
    this.session.resumeInput();
  }

  send(messages: readonly Uint8Array[]): void {
    // One queue per peer keeps UPDATE order (an announce never overtakes a later withdraw).
    this.chain = this.chain
      .then(() => this.session.sendUpdates(messages))
      .catch((err: unknown) => {
        // The session went down mid-send: the down event resets the Adj-RIB-Out membership.
        this.lastNotification ??= errorMessage(err);
      });
  }

  acceptIncoming(socket: net.Socket): void {
    this.lastSocket = socket;
    this.session.acceptIncoming(socket as unknown as BgpSocket);
  }
}

/** Builds session transports and routes incoming connections to them. */
export class SessionTransports {
  private readonly byAddress = new Map<string, SessionTransport>();
  readonly factory: TransportFactory;

  constructor(private readonly opts: SessionTransportOptions = {}) {
    this.factory = (peer, local, h) => new SessionTransport(peer, local, h, this, opts);
  }

  /**
   * Use another listener (listen address/port changed) or none: the configured peers' MD5 keys and
   * GTSM settings go onto the new listening socket. Sessions are not touched (accepted
   * connections keep the options they were accepted with).
   */
  setListener(listener: BgpListener | undefined): void {
    this.opts.listener = listener;
    for (const t of this.byAddress.values()) this.secure(t.peer);
  }

  /** Hand an accepted connection to the peer's session; unknown addresses are refused. */
  incoming(socket: net.Socket): void {
    const remote = socket.remoteAddress ? normalize(socket.remoteAddress) : '';
    const t = this.byAddress.get(remote);
    if (!t) {
      this.opts.logger?.info({ remote }, 'refusing a connection from an unconfigured address');
      socket.destroy();
      return;
    }
    t.acceptIncoming(socket);
  }

  register(peer: PeerConfig, t: SessionTransport): void {
    this.byAddress.set(peer.address, t);
    this.secure(peer);
  }

  /** The peer's MD5 key and GTSM setting on the listening socket. */
  private secure(peer: PeerConfig): void {
    const l = this.opts.listener;
    if (!l) return;
    try {
      l.setPeerPassword(peer.address, peer.password);
      if (peer.ttlSecurity !== undefined) l.setPeerTtlSecurity(peer.address, peer.ttlSecurity);
    } catch (err) {
      this.opts.logger?.warn({ peer: peer.address, err: errorMessage(err) }, 'cannot set listener socket options for peer');
    }
  }

  unregister(peer: PeerConfig, t: SessionTransport): void {
    if (this.byAddress.get(peer.address) !== t) return;
    this.byAddress.delete(peer.address);
    const l = this.opts.listener;
    if (!l) return;
    try {
      if (peer.password !== undefined) l.setPeerPassword(peer.address, undefined);
      if (peer.ttlSecurity !== undefined) l.setPeerTtlSecurity(peer.address, undefined);
    } catch {
      // The listener may already be closed during shutdown; nothing left to clean.
    }
  }
}
