/**
 * RFC 4271 §8 finite state machine for ONE connection, as a pure machine: events in, actions
 * out. No sockets, no clocks: the Session performs the actions (send, timers, connect, close).
 * Every transition carries a typed reason.
 */
import {
  BgpError,
  CeaseSub,
  FsmSub,
  NotifCode,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  notificationName,
  type BgpMessage,
  type NotificationMessage,
  type UpdateMessage,
  type RouteRefreshMessage,
  type AttrNote,
} from '../codec/index.js';
import { buildOpen, negotiate, type LocalConfig, type Negotiated } from './negotiate.js';

export type BgpState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';
/** RFC 4271 §10 suggested connect-retry time, seconds. */
export const DEFAULT_CONNECT_RETRY_TIME = 120;

export type TimerName = 'connectRetry' | 'hold' | 'keepalive' | 'idleHold';

export type StateReason =
  | 'manual-start'
  | 'automatic-start'
  | 'manual-stop'
  | 'tcp-connected'
  | 'tcp-failed'
  | 'connect-retry-expired'
  | 'hold-timer-expired'
  | 'send-hold-timer-expired'
  | 'open-received'
  | 'open-error'
  | 'keepalive-received'
  | 'notification-received'
  | 'message-error'
  | 'fsm-error'
  | 'collision'
  | 'established';

export type FsmEvent =
  | { type: 'ManualStart' }
  | { type: 'ManualStop'; subcode?: number; shutdownMessage?: string; data?: Uint8Array }
  | { type: 'TimerExpired'; timer: TimerName }
  /** The TCP connection is up (outgoing connect completed, or an incoming one was accepted). */
  | { type: 'TcpConnectionConfirmed' }
  | { type: 'TcpConnectionFails'; detail?: string }
  | { type: 'Message'; message: BgpMessage; treatAsWithdraw?: boolean; notes?: AttrNote[] }
  /** A received message did not decode (header / OPEN / UPDATE error needing a reset). */
  | { type: 'DecodeError'; error: BgpError }
  /** This connection lost collision resolution (RFC 4271 §6.8). */
  | { type: 'CollisionLost' }
  /** RFC 9687: our output made no progress for the send hold time. */
  | { type: 'SendHoldTimerExpired' };

export type FsmAction =
  | { type: 'send'; bytes: Uint8Array; kind: 'open' | 'keepalive' | 'notification'; notification?: NotificationMessage }
  | { type: 'startTimer'; timer: TimerName; seconds: number }
  | { type: 'stopTimer'; timer: TimerName }
  | { type: 'connect' }
  /** Drop the TCP connection (after flushing what was sent). */
  | { type: 'close' }
  | { type: 'state'; from: BgpState; to: BgpState; reason: StateReason; detail?: string }
  | { type: 'established'; negotiated: Negotiated }
  | { type: 'openReceived'; bgpId: string; peerAs: number }
  | { type: 'update'; update: UpdateMessage; treatAsWithdraw: boolean; notes: AttrNote[] }
  | { type: 'routeRefresh'; message: RouteRefreshMessage }
  | { type: 'notificationReceived'; notification: NotificationMessage };

export interface FsmOptions {
  config: LocalConfig;
  /** Passive: never initiate the TCP connection (RFC 4271 event 5). */
  passive?: boolean;
  /** Seconds; default 120 (RFC 4271 §10). */
  connectRetryTime?: number;
  /** Hold time while waiting for the OPEN; default 240 s (RFC 4271 §8 "large value"). */
  openSentHoldTime?: number;
  /** First idle-hold back-off after an error, seconds; doubles up to maxIdleHoldTime. Default 5 / 120. */
  idleHoldTime?: number;
  maxIdleHoldTime?: number;
  /** Restart automatically after errors (idle-hold back-off). Default true. */
  autoRestart?: boolean;
}

export class BgpFsm {
  state: BgpState = 'Idle';
  negotiated: Negotiated | undefined;
  /** The peer's OPEN identity, once received (for collision detection). */
  peerOpen: { bgpId: string; peerAs: number } | undefined;
  connectRetryCounter = 0;
  private idleHold: number;
  private started = false;
  private lastError: string | undefined;
  private readonly opts: Required<Omit<FsmOptions, 'config'>> & { config: LocalConfig };

  constructor(opts: FsmOptions) {
    this.opts = {
      passive: false,
      connectRetryTime: DEFAULT_CONNECT_RETRY_TIME,
      openSentHoldTime: 240,
      idleHoldTime: 5,
      maxIdleHoldTime: 120,
      autoRestart: true,
      ...opts,
    };
    this.idleHold = this.opts.idleHoldTime;
  }

  /** This connection becomes the session's main one (after collision): restart after errors like the original. */
  adopt(passive: boolean): void {
    this.opts.passive = passive;
    this.opts.autoRestart = true;
    this.started = true;
  }

  setConfig(config: LocalConfig): void {
    this.opts.config = config;
  }

  get config(): LocalConfig {
    return this.opts.config;
  }
  get passive(): boolean {
    return this.opts.passive;
  }
  /** The reason the session last went down. */
  get lastErrorText(): string | undefined {
    return this.lastError;
  }

  handle(ev: FsmEvent): FsmAction[] {
    const out: FsmAction[] = [];
    switch (this.state) {
      case 'Idle':
        this.idle(ev, out);
        break;
      case 'Connect':
      case 'Active':
        this.connecting(ev, out);
        break;
      case 'OpenSent':
        this.openSent(ev, out);
        break;
      case 'OpenConfirm':
        this.openConfirm(ev, out);
        break;
      case 'Established':
        this.established(ev, out);
        break;
      default: {
        const never: never = this.state;
        throw new Error(`unknown state ${String(never)}`);
      }
    }
    return out;
  }

  private go(out: FsmAction[], to: BgpState, reason: StateReason, detail?: string): void {
    const from = this.state;
    this.state = to;
    out.push(detail === undefined ? { type: 'state', from, to, reason } : { type: 'state', from, to, reason, detail });
  }

  private start(out: FsmAction[], reason: StateReason): void {
    this.started = true;
    this.connectRetryCounter = 0;
    out.push({ type: 'stopTimer', timer: 'idleHold' });
    out.push({ type: 'startTimer', timer: 'connectRetry', seconds: this.opts.connectRetryTime });
    if (this.opts.passive) {
      this.go(out, 'Active', reason);
    } else {
      out.push({ type: 'connect' });
      this.go(out, 'Connect', reason);
    }
  }

  private idle(ev: FsmEvent, out: FsmAction[]): void {
    if (ev.type === 'ManualStart') this.start(out, 'manual-start');
    else if (ev.type === 'TimerExpired' && ev.timer === 'idleHold' && this.started) this.start(out, 'automatic-start');
    else if (ev.type === 'ManualStop') this.started = false;
    // RFC 4271 §8.2.2: every other event in Idle is ignored.
  }

  /** Go to Idle, releasing everything; after an error, arm the idle-hold back-off. */
  private toIdle(out: FsmAction[], reason: StateReason, detail?: string, error = true): void {
    for (const t of ['connectRetry', 'hold', 'keepalive'] as const) out.push({ type: 'stopTimer', timer: t });
    out.push({ type: 'close' });
    this.negotiated = undefined;
    this.peerOpen = undefined;
    if (detail !== undefined) this.lastError = detail;
    this.go(out, 'Idle', reason, detail);
    if (error) {
      this.connectRetryCounter++;
      if (this.opts.autoRestart && this.started) {
        out.push({ type: 'startTimer', timer: 'idleHold', seconds: this.idleHold });
        this.idleHold = Math.min(this.idleHold * 2, this.opts.maxIdleHoldTime);
      }
    } else this.started = false;
  }

  private sendNotification(out: FsmAction[], code: number, subcode: number, data?: Uint8Array, shutdownMessage?: string): void {
    const bytes = encodeNotification(code, subcode, data, shutdownMessage);
    const notification: NotificationMessage = { type: 'notification', code, subcode, data: data ?? new Uint8Array(0) };
    if (shutdownMessage !== undefined) notification.shutdownMessage = shutdownMessage;
    out.push({ type: 'send', bytes, kind: 'notification', notification });
  }

  private sendOpen(out: FsmAction[]): void {
    out.push({ type: 'send', bytes: encodeOpen(buildOpen(this.opts.config)), kind: 'open' });
  }

  private manualStop(ev: Extract<FsmEvent, { type: 'ManualStop' }>, out: FsmAction[], notify: boolean): void {
    if (notify) this.sendNotification(out, NotifCode.CEASE, ev.subcode ?? CeaseSub.ADMIN_SHUTDOWN, ev.data, ev.shutdownMessage);
    this.connectRetryCounter = 0;
    this.toIdle(out, 'manual-stop', 'administratively stopped', false);
  }

  private connecting(ev: FsmEvent, out: FsmAction[]): void {
    switch (ev.type) {
      case 'ManualStart':
        return;
      case 'ManualStop':
        return this.manualStop(ev, out, false);
      case 'TimerExpired':
        if (ev.timer === 'connectRetry') {
          out.push({ type: 'startTimer', timer: 'connectRetry', seconds: this.opts.connectRetryTime });
          if (this.opts.passive) return;
          out.push({ type: 'close' }, { type: 'connect' });
          if (this.state !== 'Connect') this.go(out, 'Connect', 'connect-retry-expired');
        }
        return;
      case 'TcpConnectionConfirmed':
        out.push({ type: 'stopTimer', timer: 'connectRetry' });
        this.sendOpen(out);
        out.push({ type: 'startTimer', timer: 'hold', seconds: this.opts.openSentHoldTime });
        this.go(out, 'OpenSent', 'tcp-connected');
        return;
      case 'TcpConnectionFails':
        // Connect → Active and keep listening (§8.2.2); the connect retry timer brings us back.
        if (this.state === 'Connect') {
          this.lastError = ev.detail ?? 'TCP connection failed';
          this.go(out, 'Active', 'tcp-failed', ev.detail);
        }
        return;
      case 'CollisionLost':
        return;
      default:
        // Messages before OPEN was sent are FSM errors: drop the connection.
        this.toIdle(out, 'fsm-error', 'unexpected event before the TCP connection was confirmed');
    }
  }

  private openSent(ev: FsmEvent, out: FsmAction[]): void {
    switch (ev.type) {
      case 'ManualStart':
        return;
      case 'ManualStop':
        return this.manualStop(ev, out, true);
      case 'TimerExpired':
        if (ev.timer === 'hold') this.holdExpired(out, 'hold timer expired waiting for OPEN');
        return;
      case 'TcpConnectionConfirmed':
        return;
      case 'TcpConnectionFails':
        // §8.2.2 OpenSent event 18: close, restart the connect retry timer, go to Active.
        out.push({ type: 'close' }, { type: 'stopTimer', timer: 'hold' });
        out.push({ type: 'startTimer', timer: 'connectRetry', seconds: this.opts.connectRetryTime });
        this.lastError = ev.detail ?? 'connection closed in OpenSent';
        this.go(out, 'Active', 'tcp-failed', this.lastError);
        return;
      case 'DecodeError':
        return this.fail(out, ev.error, 'message-error');
      case 'CollisionLost':
        return this.collisionLost(out);
      case 'Message': {
        const m = ev.message;
        if (m.type === 'open') {
          let neg: Negotiated;
          try {
            neg = negotiate(this.opts.config, m);
          } catch (e) {
            if (e instanceof BgpError) return this.fail(out, e, 'open-error');
            throw e;
          }
          this.negotiated = neg;
          this.peerOpen = { bgpId: neg.peerId, peerAs: neg.peerAs };
          out.push({ type: 'openReceived', bgpId: neg.peerId, peerAs: neg.peerAs });
          out.push({ type: 'send', bytes: encodeKeepalive(), kind: 'keepalive' });
          out.push({ type: 'stopTimer', timer: 'connectRetry' });
          if (neg.holdTime > 0) {
            out.push({ type: 'startTimer', timer: 'keepalive', seconds: neg.keepaliveTime });
            out.push({ type: 'startTimer', timer: 'hold', seconds: neg.holdTime });
          } else out.push({ type: 'stopTimer', timer: 'hold' });
          this.go(out, 'OpenConfirm', 'open-received');
          return;
        }
        if (m.type === 'notification') return this.notified(out, m);
        this.sendNotification(out, NotifCode.FSM, FsmSub.OPEN_SENT);
        return this.toIdle(out, 'fsm-error', `unexpected ${m.type} in OpenSent`);
      }
    }
  }

  private openConfirm(ev: FsmEvent, out: FsmAction[]): void {
    if (ev.type !== 'Message') return this.connected(ev, out);
    const m = ev.message;
    if (m.type === 'keepalive') {
      this.restartHold(out);
      this.idleHold = this.opts.idleHoldTime;
      this.connectRetryCounter = 0;
      this.lastError = undefined;
      this.go(out, 'Established', 'established');
      out.push({ type: 'established', negotiated: this.negotiated! });
      return;
    }
    if (m.type === 'notification') return this.notified(out, m);
    this.sendNotification(out, NotifCode.FSM, FsmSub.OPEN_CONFIRM);
    return this.toIdle(out, 'fsm-error', `unexpected ${m.type} in OpenConfirm`);
  }

  private established(ev: FsmEvent, out: FsmAction[]): void {
    if (ev.type !== 'Message') return this.connected(ev, out);
    const m = ev.message;
    switch (m.type) {
      case 'keepalive':
        this.restartHold(out);
        return;
      case 'update':
        this.restartHold(out);
        out.push({ type: 'update', update: m, treatAsWithdraw: ev.treatAsWithdraw ?? false, notes: ev.notes ?? [] });
        return;
      case 'route-refresh':
        this.restartHold(out);
        out.push({ type: 'routeRefresh', message: m });
        return;
      case 'notification':
        return this.notified(out, m);
      case 'open':
        this.sendNotification(out, NotifCode.FSM, FsmSub.ESTABLISHED);
        return this.toIdle(out, 'fsm-error', 'unexpected OPEN in Established');
    }
  }

  /** Events other than messages once both OPENs were exchanged: alike in OpenConfirm and Established. */
  private connected(ev: Exclude<FsmEvent, { type: 'Message' }>, out: FsmAction[]): void {
    const established = this.state === 'Established';
    switch (ev.type) {
      case 'ManualStart':
      case 'TcpConnectionConfirmed':
        return;
      case 'CollisionLost':
        // RFC 4271 §6.8: an Established connection always wins.
        if (!established) this.collisionLost(out);
        return;
      case 'SendHoldTimerExpired':
        return this.sendHoldExpired(out);
      case 'ManualStop':
        return this.manualStop(ev, out, true);
      case 'TimerExpired':
        if (ev.timer === 'hold') this.holdExpired(out, established ? 'hold timer expired' : 'hold timer expired in OpenConfirm');
        else if (ev.timer === 'keepalive') this.keepalive(out);
        return;
      case 'TcpConnectionFails':
        return this.toIdle(out, 'tcp-failed', ev.detail ?? (established ? 'connection closed by the peer' : 'connection closed in OpenConfirm'));
      case 'DecodeError':
        return this.fail(out, ev.error, 'message-error');
    }
  }

  private holdExpired(out: FsmAction[], detail: string): void {
    this.sendNotification(out, NotifCode.HOLD_TIMER_EXPIRED, 0);
    this.toIdle(out, 'hold-timer-expired', detail);
  }

  private collisionLost(out: FsmAction[]): void {
    this.sendNotification(out, NotifCode.CEASE, CeaseSub.COLLISION_RESOLUTION);
    this.toIdle(out, 'collision', 'connection collision resolution', false);
  }

  private sendHoldExpired(out: FsmAction[]): void {
    this.sendNotification(out, NotifCode.SEND_HOLD_TIMER_EXPIRED, 0);
    this.toIdle(out, 'send-hold-timer-expired', 'send hold timer expired: the peer stopped reading (RFC 9687)');
  }

  private keepalive(out: FsmAction[]): void {
    const n = this.negotiated;
    if (!n || n.keepaliveTime === 0) return;
    out.push({ type: 'send', bytes: encodeKeepalive(), kind: 'keepalive' });
    out.push({ type: 'startTimer', timer: 'keepalive', seconds: n.keepaliveTime });
  }

  private restartHold(out: FsmAction[]): void {
    const h = this.negotiated?.holdTime ?? 0;
    if (h > 0) out.push({ type: 'startTimer', timer: 'hold', seconds: h });
  }

  private fail(out: FsmAction[], e: BgpError, reason: StateReason): void {
    this.sendNotification(out, e.notifCode, e.notifSubcode, e.data);
    this.toIdle(out, reason, `sent ${notificationName(e.notifCode, e.notifSubcode)}: ${e.message}`);
  }

  private notified(out: FsmAction[], m: NotificationMessage): void {
    out.push({ type: 'notificationReceived', notification: m });
    const text = `received ${notificationName(m.code, m.subcode)}${m.shutdownMessage ? `: "${m.shutdownMessage}"` : ''}`;
    this.toIdle(out, 'notification-received', text);
  }
}
