/**
 * The seam between the speaker and a BGP session (FSM + socket + TCP-MD5/GTSM): the speaker asks
 * for a transport per peer and reacts to its events; tests use a fake. Messages go out as encoded
 * bytes so one update group's encoding is shared by all its members.
 */
import type { UpdateMessage } from '../codec/messages.js';
import type { Negotiated } from '../session/negotiate.js';
import type { BgpState } from '../session/fsm.js';
import type { Family } from '../types.js';
import type { PeerConfig } from './config.js';

export interface TransportLocal {
  asNumber: number;
  routerId: string;
  families: Family[];
  addPaths: Partial<Record<Family, 'none' | 'receive' | 'send' | 'both'>>;
  /** Our GR capability for this peer (undefined: not announced). */
  gracefulRestart?: { restartTime: number; restarting: boolean; forwarding: Family[] };
}

export interface TransportHandlers {
  /** Every FSM transition, with a reason a user can read. */
  state(from: BgpState, to: BgpState, reason: string, detail?: string): void;
  /** OPEN exchange done; `localAddress` is our end of the TCP connection. */
  established(negotiated: Negotiated, localAddress: string): void;
  update(update: UpdateMessage, treatAsWithdraw: boolean): void;
  /** Route refresh request for a family. */
  refresh?(family: Family): void;
  /** The session left Established (or failed to get there); `error` is for status. */
  down(reason: string, error?: string): void;
}

export interface PeerTransport {
  start(): void;
  /**
   * Close with a Cease NOTIFICATION (subcode: RFC 4486) and stay down. `message` is the RFC 9003
   * shutdown communication (subcodes 2 and 4); `data` the subcode's data (Cease 1: AFI, SAFI, limit).
   */
  stop(subcode: number, message?: string, data?: Uint8Array): void;
  /** Send already encoded UPDATE messages (only while Established). */
  send(messages: readonly Uint8Array[]): void;
  /** The peer is gone from the configuration: release what start() registered. */
  dispose?(): void;
  /** Our graceful restart is over: later OPENs of this session go without the R bit. */
  restartDone?(): void;
  /** Inbound flow control: stop reading from the peer (TCP backpressure) / read again. */
  pauseInput?(): void;
  resumeInput?(): void;
}

export type TransportFactory = (peer: PeerConfig, local: TransportLocal, handlers: TransportHandlers) => PeerTransport;
