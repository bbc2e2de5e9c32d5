/**
 * A BGP session to one peer: the pure FSM (fsm.ts) joined to a transport and the codec. It
 * performs the FSM's actions (send, timers, connect, close), handles connection collisions
 * (RFC 4271 §6.8) between our outgoing and the peer's incoming connection, and emits typed
 * events. Clock and connector are injected so tests are deterministic.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../../lib/log.js';
import { silentLogger } from '../../lib/log.js';
import { TabbyError, errorMessage } from '../../lib/errors.js';
import { BgpError, MessageFramer, decodeMessage, maxMessageLength, notificationName, type AttrNote, type NotificationMessage, type RouteRefreshMessage, type UpdateMessage } from '../codec/index.js';
import { BgpFsm, DEFAULT_CONNECT_RETRY_TIME, type BgpState, type FsmAction, type FsmEvent, type StateReason, type TimerName } from './fsm.js';
import { resolveCollision, type LocalConfig, type Negotiated } from './negotiate.js';
import type { Family } from '../types.js';

/** The slice of net.Socket a session needs (tests can pass a stream pair). */
export interface BgpSocket {
  write(data: Uint8Array, cb?: (err?: Error | null) => void): boolean;
  end(): void;
  destroy(): void;
  on(ev: 'data', fn: (chunk: Buffer) => void): this;
  on(ev: 'close', fn: () => void): this;
  on(ev: 'error', fn: (err: Error) => void): this;
  on(ev: 'drain', fn: () => void): this;
  removeAllListeners(ev?: string): this;
  once(ev: 'drain', fn: () => void): this;
  /** Stop / restart 'data' events (TCP backpressure: the peer's window closes). */
  pause?(): this;
  resume?(): this;
  readonly writableLength?: number;
  readonly bytesWritten?: number;
  readonly destroyed?: boolean;
  /** Buffer writes until uncork() (net.Socket): the messages of one event-loop turn go out as one writev. */
  cork?(): void;
  uncork?(): void;
}

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export const realClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
};

export interface SessionOptions {
  config: LocalConfig;
  peerAddress: string;
  passive?: boolean;
  connectRetryTime?: number;
  openSentHoldTime?: number;
  idleHoldTime?: number;
  maxIdleHoldTime?: number;
  /**
   * Opens the outgoing TCP connection (bgp/net connectPeer with the peer's port/MD5/TTL bound in).
   * `timeoutMs` is the session's connect timeout (see connectTimeoutMs); the session also enforces
   * it itself, so a connector that ignores it is still cut off in time.
   */
  connect: (o: { timeoutMs: number }) => Promise<BgpSocket>;
  /**
   * Connect timeout in ms (default 5000). Always capped below the connect-retry time, so each
   * attempt fails (and its cause, e.g. "MD5 key mismatch / no answer", is reported) before the
   * connect-retry timer would replace it.
   */
  connectTimeoutMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** UPDATE messages written per batch before yielding to the event loop. Default 64. */
  writeBatch?: number;
  /**
   * RFC 9687 send hold time in seconds: close with NOTIFICATION 8 when our output makes no
   * progress for this long. Default max(480, 2 × negotiated hold); 0 disables.
   */
  sendHoldTime?: number;
}

export interface StateChange {
  from: BgpState;
  to: BgpState;
  reason: StateReason;
  detail?: string;
}

export interface SessionEvents {
  state: [StateChange];
  established: [Negotiated];
  update: [{ update: UpdateMessage; treatAsWithdraw: boolean; notes: AttrNote[] }];
  routeRefresh: [RouteRefreshMessage];
  notificationSent: [NotificationMessage];
  notificationReceived: [NotificationMessage];
}

export interface SessionStatus {
  peer: string;
  state: BgpState;
  /** ms since epoch of the last state change. */
  since: number;
  lastError: string | undefined;
  negotiated: Negotiated | undefined;
  messagesIn: number;
  messagesOut: number;
}

interface Conn {
  fsm: BgpFsm;
  outbound: boolean;
  socket: BgpSocket | undefined;
  framer: MessageFramer;
  timers: Map<TimerName, unknown>;
  connecting: boolean;
  /** Bumped on every new connect so a late connect result is recognised and dropped. */
  attempt: number;
  /** Writers waiting for 'drain'; woken when the connection goes away too. */
  drainWaiters: Array<() => void>;
  /** RFC 9687 progress check while Established. */
  sendHoldTimer: unknown;
  /** The socket corked by write() until the end of this event-loop turn. */
  corked: BgpSocket | undefined;
}

export class Session extends EventEmitter<SessionEvents> {
  private primary: Conn;
  /** A second connection during collision detection. */
  private secondary: Conn | undefined;
  private since: number;
  private lastErrorText: string | undefined;
  private messagesIn = 0;
  private messagesOut = 0;
  /** Inbound flow control: the consumer asked us to stop reading (see pauseInput). */
  private inputPaused = false;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(private opts: SessionOptions) {
    super();
    this.clock = opts.clock ?? realClock;
    this.log = (opts.logger ?? silentLogger()).child({ peer: opts.peerAddress });
    this.primary = this.newConn(true, opts.passive ?? false);
    this.since = this.clock.now();
  }

  private newConn(outbound: boolean, passive: boolean): Conn {
    const o = this.opts;
    const fsm = new BgpFsm({
      config: o.config,
      passive,
      ...(o.connectRetryTime !== undefined ? { connectRetryTime: o.connectRetryTime } : {}),
      ...(o.openSentHoldTime !== undefined ? { openSentHoldTime: o.openSentHoldTime } : {}),
      ...(o.idleHoldTime !== undefined ? { idleHoldTime: o.idleHoldTime } : {}),
      ...(o.maxIdleHoldTime !== undefined ? { maxIdleHoldTime: o.maxIdleHoldTime } : {}),
      autoRestart: outbound,
    });
    return { fsm, outbound, socket: undefined, framer: new MessageFramer(), timers: new Map(), connecting: false, attempt: 0, drainWaiters: [], sendHoldTimer: undefined, corked: undefined };
  }

  get state(): BgpState {
    return this.primary.fsm.state;
  }
  get negotiated(): Negotiated | undefined {
    return this.primary.fsm.state === 'Established' ? this.primary.fsm.negotiated : undefined;
  }

  status(): SessionStatus {
    return {
      peer: this.opts.peerAddress,
      state: this.state,
      since: this.since,
      lastError: this.lastErrorText,
      negotiated: this.negotiated,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
    };
  }

  start(): void {
    this.dispatch(this.primary, { type: 'ManualStart' });
  }

  /**
   * Close with Cease (Administrative Shutdown by default, RFC 9003 message optional). For the
   * max-prefix limit use `{ subcode: CeaseSub.MAX_PREFIXES, data: maxPrefixData(family, limit) }`.
   */
  stop(opts: { subcode?: number; shutdownMessage?: string; data?: Uint8Array } = {}): void {
    if (this.secondary) this.dispatch(this.secondary, { type: 'ManualStop', ...opts });
    this.dispatch(this.primary, { type: 'ManualStop', ...opts });
  }

  /**
   * An incoming TCP connection from this peer (the listener matched its address). Collision
   * rules: an Established session keeps its connection; a session without a connection adopts
   * this one; otherwise both run until the peer's OPEN tells us its BGP identifier.
   */
  acceptIncoming(socket: BgpSocket): void {
    const p = this.primary;
    const st = p.fsm.state;
    if (st === 'Idle' && !p.timers.has('idleHold')) {
      // Not started (or stopped): refuse.
      socket.destroy();
      return;
    }
    if (st === 'Established' || this.secondary) {
      this.log.info('refusing a second incoming connection (collision, Established wins)');
      socket.destroy();
      return;
    }
    if (st === 'Idle' || ((st === 'Connect' || st === 'Active') && !p.connecting)) {
      // No connection of our own: use the incoming one.
      if (st === 'Idle') this.dispatch(p, { type: 'ManualStart' });
      p.attempt++;
      p.connecting = false;
      if (p.socket) this.detach(p);
      p.outbound = false;
      this.attach(p, socket);
      this.dispatch(p, { type: 'TcpConnectionConfirmed' });
      return;
    }
    // Our own connect is under way, or in OpenSent / OpenConfirm: run a second FSM on the
    // incoming connection until the peer's OPEN lets us resolve the collision.
    const c = this.newConn(false, true);
    this.secondary = c;
    this.attach(c, socket);
    this.dispatch(c, { type: 'ManualStart' });
    this.dispatch(c, { type: 'TcpConnectionConfirmed' });
  }

  /**
   * Write pre-encoded UPDATEs without starving keepalives: batches of `writeBatch`, yielding to
   * the event loop between them and waiting for 'drain' when the socket buffer is full.
   */
  async sendUpdates(messages: readonly Uint8Array[]): Promise<void> {
    const batch = this.opts.writeBatch ?? 64;
    for (let i = 0; i < messages.length; i += batch) {
      const c = this.primary;
      const s = c.socket;
      if (c.fsm.state !== 'Established' || !s) throw new SessionDownError(this.opts.peerAddress);
      let full = false;
      for (const m of messages.slice(i, i + batch)) {
        full = !this.write(c, s, m) || full;
        this.messagesOut++;
      }
      if (full) {
        await new Promise<void>((r) => {
          c.drainWaiters.push(r);
          s.once('drain', () => r());
        });
        if (c.socket !== s) throw new SessionDownError(this.opts.peerAddress);
      }
      // Between batches, let keepalives and reads run; after the last one the caller goes on in this
      // turn (an End-of-RIB then leaves in the same writev as the UPDATEs).
      else if (i + batch < messages.length) await new Promise<void>((r) => setImmediate(r));
    }
  }

  /**
   * Inbound flow control: stop reading the socket while the consumer (the RIB) is behind. The
   * kernel buffer fills and TCP closes the peer's window, so a flooding peer is slowed down
   * instead of growing our memory. Keepalives still go out; a hold timer that expires while we
   * are not reading is re-armed (the peer is not silent, we are not listening).
   */
  pauseInput(): void {
    if (this.inputPaused) return;
    this.inputPaused = true;
    this.primary.socket?.pause?.();
    this.secondary?.socket?.pause?.();
  }

  resumeInput(): void {
    if (!this.inputPaused) return;
    this.inputPaused = false;
    this.primary.socket?.resume?.();
    this.secondary?.socket?.resume?.();
  }

  get inputIsPaused(): boolean {
    return this.inputPaused;
  }

  /** Send one already-framed message (ROUTE-REFRESH, End-of-RIB...). */
  send(message: Uint8Array): void {
    const c = this.primary;
    if (c.fsm.state !== 'Established' || !c.socket) throw new SessionDownError(this.opts.peerAddress);
    this.write(c, c.socket, message);
    this.messagesOut++;
  }

  /**
   * Writes one message. The messages written in one event-loop turn (OPEN and KEEPALIVE, an UPDATE
   * and its End-of-RIB, the replies to one received chunk) leave in one writev, so one TCP segment
   * and one wakeup of the peer instead of one each: at a 100-node mesh start every write is a
   * syscall through veth and bridge on both ends (bench/RESULTS.md, session 5). end() flushes it.
   */
  private write(c: Conn, s: BgpSocket, bytes: Uint8Array): boolean {
    if (c.corked !== s && s.cork && s.uncork) {
      c.corked = s;
      s.cork();
      setImmediate(() => {
        if (c.corked === s) c.corked = undefined;
        s.uncork?.();
      });
    }
    return s.write(bytes);
  }

  // -------------------------------------------------------------------------------------------

  private attach(c: Conn, socket: BgpSocket): void {
    c.socket = socket;
    c.framer = new MessageFramer();
    socket.on('data', (chunk) => this.onData(c, chunk));
    if (this.inputPaused) socket.pause?.();
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('drain', () => (c.drainWaiters = []));
    socket.on('close', () => {
      if (c.socket !== socket) return;
      c.socket = undefined;
      if (c.sendHoldTimer !== undefined) this.clock.clearTimeout(c.sendHoldTimer);
      c.sendHoldTimer = undefined;
      for (const w of c.drainWaiters.splice(0)) w();
      this.dispatch(c, { type: 'TcpConnectionFails', detail: 'connection closed by the peer' });
    });
  }

  private detach(c: Conn): void {
    const s = c.socket;
    c.socket = undefined;
    if (c.sendHoldTimer !== undefined) this.clock.clearTimeout(c.sendHoldTimer);
    c.sendHoldTimer = undefined;
    for (const w of c.drainWaiters.splice(0)) w();
    if (!s) return;
    s.removeAllListeners('data');
    s.removeAllListeners('close');
    s.on('error', () => undefined);
    s.end();
    const t = setTimeout(() => s.destroy(), 2000);
    t.unref();
  }

  private onData(c: Conn, chunk: Buffer): void {
    let msgs: Uint8Array[];
    try {
      msgs = c.framer.push(chunk);
    } catch (e) {
      if (e instanceof BgpError) return this.dispatch(c, { type: 'DecodeError', error: e });
      throw e;
    }
    for (const m of msgs) {
      if (c.socket === undefined) return; // closed by an earlier message of this chunk
      this.messagesIn++;
      const decodeOpts = c.fsm.negotiated?.decode ?? {};
      let ev: FsmEvent;
      try {
        const d = decodeMessage(m, decodeOpts);
        ev = { type: 'Message', message: d.message };
        if (d.treatAsWithdraw !== undefined) ev.treatAsWithdraw = d.treatAsWithdraw;
        if (d.notes !== undefined) ev.notes = d.notes;
      } catch (e) {
        if (!(e instanceof BgpError)) throw e;
        ev = { type: 'DecodeError', error: e };
      }
      this.dispatch(c, ev);
    }
    const bad = c.framer.failed;
    if (bad && c.socket !== undefined) this.dispatch(c, { type: 'DecodeError', error: bad });
  }

  private dispatch(c: Conn, ev: FsmEvent): void {
    const actions = c.fsm.handle(ev);
    for (const a of actions) this.perform(c, a);
    if (c === this.primary || c === this.secondary) this.checkCollision();
  }

  private checkCollision(): void {
    const s = this.secondary;
    if (!s) return;
    const p = this.primary;
    if (s.fsm.state === 'Idle') {
      this.secondary = undefined;
      return;
    }
    const ps = p.fsm.state;
    if (ps === 'Idle' || ps === 'Connect' || ps === 'Active') {
      // Our side has no connection yet. If our connect failed, or the peer's OPEN already arrived
      // on its connection, there is nothing to collide with: continue on the peer's connection.
      if (!p.connecting || s.fsm.peerOpen) this.promote(s);
      return;
    }
    // RFC 4271 §6.8: only connections in OpenSent/OpenConfirm take part; wait for our connect.
    if (p.fsm.state !== 'OpenSent' && p.fsm.state !== 'OpenConfirm') return;
    const open = s.fsm.peerOpen ?? p.fsm.peerOpen;
    if (!open) return;
    const cfg = this.opts.config;
    const keep = resolveCollision(cfg.routerId, open.bgpId, cfg.localAs, open.peerAs);
    const keepOutbound = keep === 'local';
    const loser = p.outbound === keepOutbound ? s : p;
    this.log.info({ keep: keepOutbound ? 'outgoing' : 'incoming' }, 'connection collision resolved');
    this.secondary = undefined;
    if (loser === p) {
      this.dispatch(p, { type: 'CollisionLost' });
      this.promote(s);
    } else {
      this.dispatch(s, { type: 'CollisionLost' });
    }
  }

  /** Replace the local configuration used for OPENs from now on (e.g. clear the GR R bit after a restart). */
  setConfig(config: LocalConfig): void {
    this.opts.config = config;
    this.primary.fsm.setConfig(config);
    this.secondary?.fsm.setConfig(config);
  }

  private promote(s: Conn): void {
    const old = this.primary;
    for (const h of old.timers.values()) this.clock.clearTimeout(h);
    old.timers.clear();
    old.attempt++;
    old.connecting = false;
    if (old.socket) this.detach(old);
    this.secondary = undefined;
    this.primary = s;
    // the promoted connection takes over restart duty
    s.fsm.adopt(this.opts.passive ?? false);
    if (s.fsm.state !== old.fsm.state) {
      this.since = this.clock.now();
      this.emit('state', { from: old.fsm.state, to: s.fsm.state, reason: 'collision', detail: 'continuing on the connection the peer opened' });
    }
  }

  private perform(c: Conn, a: FsmAction): void {
    switch (a.type) {
      case 'send':
        if (c.socket) {
          this.write(c, c.socket, a.bytes);
          this.messagesOut++;
        }
        if (a.kind === 'notification' && a.notification) {
          this.log.info({ notification: notificationName(a.notification.code, a.notification.subcode) }, 'NOTIFICATION sent');
          if (c === this.primary) this.emit('notificationSent', a.notification);
        }
        return;
      case 'startTimer': {
        const old = c.timers.get(a.timer);
        if (old !== undefined) this.clock.clearTimeout(old);
        const fire = (): void => {
          if (a.timer === 'hold' && this.inputPaused && c.socket) {
            // Our own backpressure holds the peer's KEEPALIVEs in the socket buffer.
            c.timers.set(a.timer, this.clock.setTimeout(fire, a.seconds * 1000));
            return;
          }
          c.timers.delete(a.timer);
          this.dispatch(c, { type: 'TimerExpired', timer: a.timer });
        };
        const h = this.clock.setTimeout(fire, a.seconds * 1000);
        c.timers.set(a.timer, h);
        return;
      }
      case 'stopTimer': {
        const old = c.timers.get(a.timer);
        if (old !== undefined) this.clock.clearTimeout(old);
        c.timers.delete(a.timer);
        return;
      }
      case 'connect':
        this.connect(c);
        return;
      case 'close':
        c.attempt++;
        c.connecting = false;
        this.detach(c);
        return;
      case 'state':
        if (c !== this.primary) return;
        this.since = this.clock.now();
        if (a.detail !== undefined && a.to !== 'Established') this.lastErrorText = a.detail;
        if (a.to === 'Established') this.lastErrorText = undefined;
        this.log.info({ from: a.from, to: a.to, reason: a.reason, detail: a.detail }, `${a.from} -> ${a.to}`);
        this.emit('state', a.detail === undefined ? { from: a.from, to: a.to, reason: a.reason } : { from: a.from, to: a.to, reason: a.reason, detail: a.detail });
        return;
      case 'established':
        this.armSendHold(c, a.negotiated.holdTime);
        if (c === this.primary) this.emit('established', a.negotiated);
        return;
      case 'openReceived':
        // RFC 8654: larger messages are accepted once both sides announced extended messages.
        c.framer.maxLength = maxMessageLength(c.fsm.negotiated?.decode);
        return;
      case 'update':
        this.emit('update', { update: a.update, treatAsWithdraw: a.treatAsWithdraw, notes: a.notes });
        return;
      case 'routeRefresh':
        this.emit('routeRefresh', a.message);
        return;
      case 'notificationReceived':
        this.log.info({ notification: notificationName(a.notification.code, a.notification.subcode) }, 'NOTIFICATION received');
        this.emit('notificationReceived', a.notification);
        return;
    }
  }

  /**
   * RFC 9687: while Established, check every 1/8 of the send hold time whether bytes queued for
   * the peer moved. No movement for the whole send hold time → SendHoldTimerExpired.
   */
  private armSendHold(c: Conn, holdTime: number): void {
    const limit = (this.opts.sendHoldTime ?? Math.max(480, 2 * holdTime)) * 1000;
    if (limit <= 0) return;
    const socket = c.socket;
    let lastBytes = socket?.bytesWritten ?? 0;
    let progressAt = this.clock.now();
    const check = (): void => {
      if (c.socket !== socket || !socket || c.fsm.state !== 'Established') return;
      const now = this.clock.now();
      const bytes = socket.bytesWritten ?? 0;
      if ((socket.writableLength ?? 0) === 0 || bytes !== lastBytes) {
        lastBytes = bytes;
        progressAt = now;
      } else if (now - progressAt >= limit) {
        this.dispatch(c, { type: 'SendHoldTimerExpired' });
        return;
      }
      c.sendHoldTimer = this.clock.setTimeout(check, Math.max(1000, limit / 8));
    };
    c.sendHoldTimer = this.clock.setTimeout(check, Math.max(1000, limit / 8));
  }

  /** The connect timeout actually used: the configured one, capped at 80 % of connect retry. */
  get connectTimeoutMs(): number {
    const retryMs = (this.opts.connectRetryTime ?? DEFAULT_CONNECT_RETRY_TIME) * 1000;
    return Math.max(1, Math.min(this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, Math.floor(retryMs * 0.8)));
  }

  private connect(c: Conn): void {
    if (c.connecting) return;
    c.connecting = true;
    const attempt = ++c.attempt;
    const timeoutMs = this.connectTimeoutMs;
    // Our own deadline comes a little after the connector's, so its more specific reason (e.g.
    // "MD5 key mismatch / no answer") wins when it keeps time; still before connect retry.
    const retryMs = (this.opts.connectRetryTime ?? DEFAULT_CONNECT_RETRY_TIME) * 1000;
    const deadlineMs = Math.max(timeoutMs, Math.min(timeoutMs + 250, Math.floor(retryMs * 0.9)));
    let timer: unknown;
    const connecting = this.opts.connect({ timeoutMs });
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = this.clock.setTimeout(() => reject(new ConnectTimeoutError(this.opts.peerAddress, deadlineMs)), deadlineMs);
    });
    // A socket that arrives after our own deadline is closed.
    connecting.then(
      (socket) => {
        if (attempt !== c.attempt) socket.destroy();
      },
      () => undefined,
    );
    Promise.race([connecting, deadline]).finally(() => this.clock.clearTimeout(timer)).then(
      (socket) => {
        if (attempt !== c.attempt || (c.fsm.state !== 'Connect' && c.fsm.state !== 'Active') || c.socket) {
          socket.destroy();
          return;
        }
        c.connecting = false;
        c.outbound = true;
        this.attach(c, socket);
        this.dispatch(c, { type: 'TcpConnectionConfirmed' });
      },
      (err: unknown) => {
        if (attempt !== c.attempt) return;
        if (err instanceof ConnectTimeoutError) c.attempt++; // a late socket from this attempt is dropped
        c.connecting = false;
        const detail = errorMessage(err);
        this.lastErrorText = (err as { reason?: string }).reason ?? detail;
        this.dispatch(c, { type: 'TcpConnectionFails', detail: this.lastErrorText });
      },
    );
  }
}

export class ConnectTimeoutError extends TabbyError {
  /** Short status text (like bgp/net ConnectError.reason). */
  readonly reason: string;
  constructor(peer: string, ms: number) {
    super('BGP_CONNECT_TIMEOUT', `connect to ${peer} timed out after ${ms} ms`, { hint: 'check that the peer is up, reachable and configured for us (a wrong MD5 password also looks like no answer)' });
    this.reason = 'no answer (connect timed out)';
  }
}

export class SessionDownError extends TabbyError {
  constructor(peer: string) {
    super('BGP_SESSION_DOWN', `session to ${peer} is not Established`, { hint: 'wait for the Established event before sending routes' });
  }
}

/** NOTIFICATION data for Cease / Maximum Number of Prefixes Reached (RFC 4486 §4): AFI, SAFI, limit. */
export function maxPrefixData(family: Family, limit: number): Uint8Array {
  const d = new Uint8Array(7);
  d[1] = family === 'ipv4-unicast' ? 1 : 2;
  d[2] = 1;
  new DataView(d.buffer).setUint32(3, limit);
  return d;
}
