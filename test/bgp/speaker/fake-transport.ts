/** A fake PeerTransport: the test plays the session (state, OPEN outcome, UPDATEs) and reads what the speaker sent. */
import { decodeMessage } from '../../../bgp/codec/index.js';
import type { UpdateMessage } from '../../../bgp/codec/messages.js';
import type { Negotiated } from '../../../bgp/session/negotiate.js';
import type { PeerConfig } from '../../../bgp/speaker/config.js';
import type { PeerTransport, TransportFactory, TransportHandlers, TransportLocal } from '../../../bgp/speaker/transport.js';
import type { Family } from '../../../bgp/types.js';

export class FakeTransport implements PeerTransport {
  started = 0;
  stopped: Array<{ subcode: number; message?: string; data?: Uint8Array }> = [];
  sent: Uint8Array[] = [];
  constructor(
    readonly peer: PeerConfig,
    readonly local: TransportLocal,
    readonly h: TransportHandlers,
  ) {}
  start(): void {
    this.started++;
    this.h.state('Idle', 'Connect', 'manual-start');
  }
  stop(subcode: number, message?: string, data?: Uint8Array): void {
    this.stopped.push({ subcode, ...(message !== undefined ? { message } : {}), ...(data !== undefined ? { data } : {}) });
  }
  send(messages: readonly Uint8Array[]): void {
    this.sent.push(...messages);
  }
  restarting: boolean | undefined = undefined;
  restartDone(): void {
    this.restarting = false;
  }

  /** Bring the session up with these negotiated values. */
  establish(over: Partial<Negotiated> = {}, localAddress = '10.0.0.100'): void {
    const families: Family[] = over.families ?? this.local.families;
    const neg: Negotiated = {
      peerAs: this.peer.asNumber,
      peerId: this.peer.address,
      holdTime: 90,
      keepaliveTime: 30,
      as4: true,
      families,
      addPath: { receive: [], send: [] },
      routeRefresh: true,
      enhancedRouteRefresh: false,
      extendedMessage: false,
      extendedNextHop: [],
      gracefulRestart: undefined,
      llgr: false,
      peerHostname: undefined,
      peerCapabilities: [],
      decode: {},
      encode: {},
      ...over,
    };
    this.h.state('OpenConfirm', 'Established', 'established');
    this.h.established(neg, localAddress);
  }

  drop(reason = 'hold-timer-expired', error?: string): void {
    this.h.state('Established', 'Idle', reason, error);
    this.h.down(reason, error);
  }

  announce(prefixes: string[], attrs: UpdateMessage['attributes'], nextHop: string, family: Family = 'ipv4-unicast', pathIds?: number[]): void {
    this.h.update(
      {
        type: 'update',
        attributes: { ...attrs, ...(family === 'ipv4-unicast' ? { nextHop } : {}) },
        announce: [{ family, nextHop, nlri: prefixes.map((prefix, i) => (pathIds ? { prefix, pathId: pathIds[i] ?? 0 } : { prefix })) }],
        withdraw: [],
      },
      false,
    );
  }

  withdraw(prefixes: string[], family: Family = 'ipv4-unicast'): void {
    this.h.update({ type: 'update', attributes: {}, announce: [], withdraw: [{ family, nlri: prefixes.map((prefix) => ({ prefix })) }] }, false);
  }

  endOfRib(family: Family = 'ipv4-unicast'): void {
    this.h.update({ type: 'update', attributes: {}, announce: [], withdraw: [], endOfRib: { afi: family === 'ipv4-unicast' ? 1 : 2, safi: 1, family } }, false);
  }

  /** Decoded UPDATEs sent so far (then cleared). */
  take(addPath: Family[] = []): UpdateMessage[] {
    const out = this.sent.map((b) => decodeMessage(b, { addPath }).message as UpdateMessage);
    this.sent = [];
    return out;
  }
}

export function fakeFactory(): { factory: TransportFactory; transports: Map<string, FakeTransport>; all: FakeTransport[] } {
  const transports = new Map<string, FakeTransport>();
  const all: FakeTransport[] = [];
  return {
    transports,
    all,
    factory: (peer, local, h) => {
      const t = new FakeTransport(peer, local, h);
      transports.set(peer.address, t);
      all.push(t);
      return t;
    },
  };
}

export function announced(updates: UpdateMessage[]): string[] {
  return updates.flatMap((u) => u.announce.flatMap((g) => g.nlri.map((n) => n.prefix)));
}
export function withdrawn(updates: UpdateMessage[]): string[] {
  return updates.flatMap((u) => u.withdraw.flatMap((g) => g.nlri.map((n) => n.prefix)));
}
export function eors(updates: UpdateMessage[]): number {
  return updates.filter((u) => u.endOfRib).length;
}
