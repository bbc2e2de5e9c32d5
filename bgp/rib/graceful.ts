/**
 * Graceful restart (RFC 4724).
 *
 * Helper role: when the session of a GR-capable peer drops, its paths stay in the RIB marked stale
 * for the restart time it announced. When it comes back, families it no longer preserves (no GR or
 * F bit clear) are flushed at once; the others are swept when its End-of-RIB arrives or when the
 * stale timer fires, whichever comes first.
 *
 * Restarting role: after our own restart we defer sending (and best-path driven FIB changes)
 * until every GR peer that is *not itself restarting* has sent End-of-RIB, bounded by a timer. Not
 * waiting for restarting peers is what prevents two restarting speakers from waiting on each other
 * (Calico #7144).
 */
import type { Family } from '../types.js';

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** What a peer said about graceful restart in its OPEN. */
export interface PeerGrCapability {
  restartTime: number;
  /** The peer is restarting (R bit). */
  restarting: boolean;
  families: Array<{ family: Family; forwarding: boolean }>;
}

export interface StaleRib {
  markStale(peerId: string, families?: readonly Family[]): Promise<number>;
  sweepStale(peerId: string, families?: readonly Family[]): Promise<number>;
  removePeer(peerId: string, forget?: boolean): Promise<void>;
}

export type GrEvent =
  | { kind: 'stale'; peerId: string; routes: number; restartTime: number }
  | { kind: 'swept'; peerId: string; routes: number; why: 'end-of-rib' | 'timer' | 'not-preserved' };

interface StaleState {
  families: Set<Family>;
  timer: unknown;
}

export class GracefulRestartHelper {
  private readonly stale = new Map<string, StaleState>();

  constructor(
    private readonly rib: StaleRib,
    private readonly clock: Clock = realClock,
    private readonly onEvent: (e: GrEvent) => void = () => undefined,
  ) {}

  isStale(peerId: string): boolean {
    return this.stale.has(peerId);
  }

  /**
   * The session went down. With a GR capability (restart time > 0) the peer's routes are kept
   * stale; otherwise they are removed. Returns what was done.
   */
  async peerDown(peerId: string, cap: PeerGrCapability | undefined, families: readonly Family[]): Promise<'stale' | 'removed'> {
    this.clear(peerId);
    const kept = cap ? families.filter((f) => cap.families.some((x) => x.family === f)) : [];
    if (!cap || cap.restartTime <= 0 || kept.length === 0) {
      await this.rib.removePeer(peerId, false);
      return 'removed';
    }
    // Families the peer did not list for GR are not preserved.
    const dropped = families.filter((f) => !kept.includes(f));
    const n = await this.rib.markStale(peerId, kept);
    if (dropped.length) await this.rib.sweepStale(peerId, dropped);
    const st: StaleState = { families: new Set(kept), timer: undefined };
    st.timer = this.clock.setTimeout(() => void this.expire(peerId, st), cap.restartTime * 1000);
    this.stale.set(peerId, st);
    this.onEvent({ kind: 'stale', peerId, routes: n, restartTime: cap.restartTime });
    return 'stale';
  }

  /** The session is Established again; flush families the peer no longer preserves. */
  async peerUp(peerId: string, cap: PeerGrCapability | undefined): Promise<void> {
    const st = this.stale.get(peerId);
    if (!st) return;
    const notPreserved = [...st.families].filter((f) => !cap?.families.some((x) => x.family === f && x.forwarding));
    if (notPreserved.length) {
      for (const f of notPreserved) st.families.delete(f);
      const n = await this.rib.sweepStale(peerId, notPreserved);
      this.onEvent({ kind: 'swept', peerId, routes: n, why: 'not-preserved' });
    }
    if (st.families.size === 0) this.clear(peerId);
  }

  /** End-of-RIB for `family` received from the peer: sweep what was not refreshed. */
  async endOfRib(peerId: string, family: Family): Promise<void> {
    const st = this.stale.get(peerId);
    if (!st || !st.families.has(family)) return;
    st.families.delete(family);
    if (st.families.size === 0) this.clear(peerId);
    const n = await this.rib.sweepStale(peerId, [family]);
    this.onEvent({ kind: 'swept', peerId, routes: n, why: 'end-of-rib' });
  }

  /** Forget a peer (deleted from the configuration). */
  clear(peerId: string): void {
    const st = this.stale.get(peerId);
    if (st) this.clock.clearTimeout(st.timer);
    this.stale.delete(peerId);
  }

  private async expire(peerId: string, st: StaleState): Promise<void> {
    if (this.stale.get(peerId) !== st) return;
    this.stale.delete(peerId);
    const n = await this.rib.sweepStale(peerId, [...st.families]);
    this.onEvent({ kind: 'swept', peerId, routes: n, why: 'timer' });
  }
}

/**
 * Restarting role: hold back our advertisements until the peers that matter sent End-of-RIB.
 * `release` runs exactly once: when every awaited peer is done, or when the bound expires.
 */
export class SelectionDeferral {
  private readonly waiting = new Set<string>();
  private timer: unknown;
  private released = false;

  constructor(
    boundSeconds: number,
    private readonly release: (why: 'end-of-rib' | 'timer' | 'nothing-to-wait-for') => void,
    private readonly clock: Clock = realClock,
  ) {
    if (boundSeconds <= 0) {
      this.finish('nothing-to-wait-for');
      return;
    }
    this.timer = this.clock.setTimeout(() => this.finish('timer'), boundSeconds * 1000);
  }

  get active(): boolean {
    return !this.released;
  }

  /**
   * A GR peer came up. Wait for its End-of-RIB unless it is restarting itself (it would wait for
   * ours: waiting on each other is the deadlock of Calico #7144).
   */
  peerEstablished(peerId: string, cap: PeerGrCapability | undefined): void {
    if (this.released || !cap || cap.restarting) return;
    this.waiting.add(peerId);
  }

  endOfRib(peerId: string): void {
    this.done(peerId);
  }

  /** A peer we waited for went away: stop waiting for it. */
  peerDown(peerId: string): void {
    this.done(peerId);
  }

  /** Every configured peer has had its chance to connect (or been decided not to wait for). */
  settle(): void {
    if (!this.released && this.waiting.size === 0) this.finish('end-of-rib');
  }

  private done(peerId: string): void {
    if (!this.waiting.delete(peerId)) return;
    if (this.waiting.size === 0) this.finish('end-of-rib');
  }

  private finish(why: 'end-of-rib' | 'timer' | 'nothing-to-wait-for'): void {
    if (this.released) return;
    this.released = true;
    this.clock.clearTimeout(this.timer);
    this.release(why);
  }
}
