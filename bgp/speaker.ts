/**
 * BgpSpeaker: the speaker as a library object. Configured by plain objects, it wires
 *
 *            PeerTransport (session per peer: FSM, socket, MD5/GTSM)
 *               │ update                        ▲ encoded UPDATEs
 *               ▼                               │
 *   Rib (Adj-RIB-In → import policy → Loc-RIB) ─┴─► AdjRibOut (update groups, export policy)
 *               │ best-path changes
 *               ├─► FibInstaller ─► FibSink (kernel, or felix)
 *               └─► 'best-path' events
 *
 * plus graceful restart (helper: GracefulRestartHelper; restarting: SelectionDeferral + FIB hold),
 * route reflection, max-prefix (Cease 1) and setConfig() that applies differences without
 * resetting unchanged peers.
 */
import { EventEmitter } from 'node:events';
import { buildEndOfRib, CeaseSub, packedNlri } from './codec/index.js';
import type { UpdateMessage } from './codec/messages.js';
import type { Negotiated } from './session/negotiate.js';
import { maxPrefixData } from './session/session.js';
import type { BgpState } from './session/fsm.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import { AdjRibOut, type GroupSettings, type OutBatch } from './rib/adj-rib-out.js';
import { FibInstaller, type FibSink } from './fib/sink.js';
import { GracefulRestartHelper, SelectionDeferral, realClock, type Clock, type PeerGrCapability } from './rib/graceful.js';
import { sortPaths, type BestPathReason } from './rib/decision.js';
import { familyOfPrefix, type DestChange } from './rib/loc-rib.js';
import type { Path, PathSource } from './rib/path.js';
import { Rib, opSize, type RibNotice, type RibOp } from './rib/rib.js';
import type { LocalIdentity } from './rib/rules.js';
import { Policy, PrefixAdvertisements, parseCommunity, prefixWithin, type RouteContext } from './policy/filter.js';
import { diffPeers, familiesOf, peerId, type OriginateConfig, type PeerConfig, type SpeakerConfig } from './speaker/config.js';
import { encodeBatch, outEncoding, type OutEncoding } from './speaker/outbound.js';
import type { PeerStatus, RouteEntry, RoutePath, SpeakerStatus } from './speaker/status.js';
import type { PeerTransport, TransportFactory, TransportLocal } from './speaker/transport.js';
import { AsPathSegmentType, type Family, type PathAttributes } from './types.js';

export interface PeerStateEvent {
  peer: string;
  from: BgpState;
  to: BgpState;
  reason: string;
  detail?: string;
}

export interface BestPathEvent {
  family: Family;
  prefix: string;
  /** Undefined when the prefix became unreachable. */
  best: Path | undefined;
  previous: Path | undefined;
  reason: BestPathReason;
  multipath: readonly Path[];
}

export interface SpeakerEvents {
  'peer-state': [PeerStateEvent];
  'best-path': [BestPathEvent];
  /** Something a user should know about that is not a state change (max-prefix, FIB errors…). */
  warning: [{ peer?: string; message: string }];
}

export interface SpeakerOptions {
  transport: TransportFactory;
  fib?: FibSink;
  logger?: Logger;
  clock?: Clock;
  /** RIB operations per event-loop turn. */
  chunkSize?: number;
}

interface PeerRuntime {
  cfg: PeerConfig;
  id: string;
  transport: PeerTransport;
  state: BgpState;
  since: Date;
  info: string;
  lastError: string | undefined;
  negotiated: Negotiated | undefined;
  localAddress: string | undefined;
  source: PathSource | undefined;
  encoding: OutEncoding | undefined;
  /** Out groups joined (we advertise to it). */
  advertising: boolean;
  /** Stopped after Cease 1 (max prefixes): why, and the restart timer (none: stays down). */
  suspended: { reason: string; restartAt: number | undefined; timer: unknown } | undefined;
  /** Route operations of this peer queued in the RIB, and whether we stopped reading because of them. */
  pending: number;
  inputPaused: boolean;
  /** How often we paused (status). */
  inputPauses: number;
}

export class BgpSpeaker extends EventEmitter<SpeakerEvents> {
  private config: SpeakerConfig;
  private readonly rib: Rib;
  private readonly out: AdjRibOut;
  private fib: FibInstaller | undefined;
  private readonly gr: GracefulRestartHelper;
  private deferral: SelectionDeferral | undefined;
  private readonly peers = new Map<string, PeerRuntime>();
  private readonly log: Logger;
  private readonly clock: Clock;
  private importPolicies = new Map<string, Policy>();
  private exportPolicies = new Map<string, Policy>();
  private prefixAds: PrefixAdvertisements;
  private policyVersion = 0;
  private started = false;
  private fibFlushQueued = false;

  constructor(
    config: SpeakerConfig,
    private readonly opts: SpeakerOptions,
  ) {
    super();
    this.config = config;
    this.log = opts.logger ?? silentLogger();
    this.clock = opts.clock ?? realClock;
    const ribOpts: ConstructorParameters<typeof Rib>[0] = { local: this.localIdentity(), maxPaths: config.maxPaths ?? 1 };
    if (opts.chunkSize !== undefined) ribOpts.chunkSize = opts.chunkSize;
    this.rib = new Rib(ribOpts);
    this.out = new AdjRibOut(this.rib.loc, this.rib.interner, this.localIdentity(), this.isReflector());
    this.prefixAds = new PrefixAdvertisements(config.prefixAdvertisements ?? []);
    this.compilePolicies();
    this.gr = new GracefulRestartHelper(this.rib, this.clock, (e) => this.log.info({ peer: e.peerId, event: e }, `graceful restart: ${e.kind}`));
    if (opts.fib) this.fib = this.installer(opts.fib);
    this.rib.onChanges((c) => this.onRibChanges(c));
    this.rib.onNotice((n) => this.onRibNotice(n));
    this.out.onBatch((peer, b) => this.sendBatch(peer, b));
  }

  /** Start sessions and originate prefixes. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.config.gracefulRestart?.restarting) {
      if (this.fib) await this.fib.adoptInstalled();
      this.deferral = new SelectionDeferral(
        this.config.gracefulRestart.deferralTime ?? 120,
        (why) => this.endDeferral(why),
        this.clock,
      );
    }
    await this.applyOriginate([], this.config.originate ?? []);
    for (const p of this.config.peers) this.addPeer(p);
  }

  /** Close every session with Cease (administrative shutdown) and stop. */
  async stop(message = 'shutting down'): Promise<void> {
    for (const rt of this.peers.values()) {
      rt.transport.stop(CeaseSub.ADMIN_SHUTDOWN, message);
      rt.transport.dispose?.();
    }
    this.peers.clear();
    await this.rib.drain();
    this.started = false;
  }

  /** Apply a new configuration; unchanged peers keep their sessions. */
  async setConfig(next: SpeakerConfig): Promise<void> {
    const prev = this.config;
    this.config = next;
    if (prev.routerId !== next.routerId || prev.asNumber !== next.asNumber) {
      // A new identity: every session must be renegotiated.
      this.rib.setLocal(this.localIdentity());
      this.out.setLocal(this.localIdentity(), this.isReflector());
      for (const id of [...this.peers.keys()]) this.removePeer(id, CeaseSub.OTHER_CONFIG_CHANGE);
      for (const p of next.peers) this.addPeer(p);
    } else {
      const d = diffPeers(prev.peers, next.peers);
      for (const id of d.removed) await this.deletePeer(id);
      for (const p of d.reset) {
        this.removePeer(peerId(p), CeaseSub.OTHER_CONFIG_CHANGE);
        this.addPeer(p);
      }
      for (const p of d.added) this.addPeer(p);
      const policyChanged =
        JSON.stringify(prev.filters ?? []) !== JSON.stringify(next.filters ?? []) ||
        JSON.stringify(prev.prefixAdvertisements ?? []) !== JSON.stringify(next.prefixAdvertisements ?? []) ||
        prev.routePriority !== next.routePriority;
      const reflectorChanged = prev.clusterId !== next.clusterId;
      if (policyChanged) {
        this.prefixAds = new PrefixAdvertisements(next.prefixAdvertisements ?? []);
      }
      if (policyChanged || d.updated.length) this.compilePolicies();
      if (reflectorChanged) {
        this.rib.setLocal(this.localIdentity());
        this.out.setLocal(this.localIdentity(), this.isReflector());
      }
      const touched = policyChanged || reflectorChanged ? [...this.peers.values()] : d.updated.map((p) => this.peers.get(peerId(p)));
      for (const p of d.updated) {
        const rt = this.peers.get(peerId(p));
        if (!rt) continue;
        rt.cfg = p;
        // A changed limit (or restart time) ends a max-prefix stop at once.
        if (rt.suspended) this.resume(rt);
      }
      for (const rt of touched) {
        if (!rt) continue;
        if (rt.source) {
          this.rib.addPeer(this.ribPeer(rt, rt.source));
          await this.rib.reimport(rt.id);
        }
        if (rt.advertising) this.advertise(rt, false);
      }
    }
    this.rib.loc.setMaxPaths(next.maxPaths ?? 1);
    await this.applyOriginate(prev.originate ?? [], next.originate ?? []);
    await this.rib.drain();
  }

  status(): SpeakerStatus {
    const routes = this.rib.loc.bestCounts();
    const peers: PeerStatus[] = [...this.peers.values()].map((rt) => this.peerStatus(rt));
    const s: SpeakerStatus = {
      routerId: this.config.routerId,
      asNumber: this.config.asNumber,
      deferringAdvertisements: this.deferral?.active ?? false,
      routes,
      attributeSets: this.rib.interner.size,
      peers,
    };
    if (this.config.listen) s.listen = this.config.listen;
    return s;
  }

  /**
   * The Loc-RIB, best path first. `filter`: a CIDR (prefixes inside it) or an address (prefixes
   * containing it).
   */
  routes(filter?: string): RouteEntry[] {
    const out: RouteEntry[] = [];
    const cidr = filter === undefined ? undefined : filter.includes('/') ? filter : `${filter}/${filter.includes(':') ? 128 : 32}`;
    for (const d of this.rib.loc.destinations()) {
      if (cidr && familyOfPrefix(cidr) !== d.family) continue;
      if (cidr && !(filter?.includes('/') ? prefixWithin(d.prefix, cidr) : prefixWithin(cidr, d.prefix))) continue;
      const paths = sortPaths(d.paths.values()).map((p) => routePath(p, p === d.best, d.multipath.includes(p)));
      out.push({ family: d.family, prefix: d.prefix, reason: d.reason, paths });
    }
    return out.sort((a, b) => (a.family === b.family ? (a.prefix < b.prefix ? -1 : 1) : a.family < b.family ? -1 : 1));
  }

  /**
   * Switch kernel installation on, off or to another sink without touching sessions: the new sink
   * gets every best path of the Loc-RIB, the old one's routes are removed. `order`: install the
   * new routes before removing the old ones (no gap; needs routes the two sinks tell apart, e.g.
   * another protocol number or table), or remove first (same protocol and table: a metric change).
   */
  async setFib(sink: FibSink | undefined, order: 'install-first' | 'remove-first' = 'remove-first'): Promise<void> {
    await this.rib.drain();
    const old = this.fib;
    const next = sink ? this.installer(sink) : undefined;
    this.fib = next;
    if (old && order === 'remove-first') await old.withdrawAll();
    if (next) {
      const all: DestChange[] = [];
      for (const d of this.rib.loc.destinations()) {
        if (d.best) all.push({ dest: d, previousBest: undefined, bestChanged: true, multipathChanged: true, path: d.best, removed: false });
      }
      next.apply(all);
      await next.flush();
    }
    if (old && order === 'install-first') await old.withdrawAll();
  }

  private installer(sink: FibSink): FibInstaller {
    return new FibInstaller(sink, {
      onError: (prefix, err) => this.emit('warning', { message: `FIB: ${prefix}: ${errorMessage(err)}` }),
      lookupV4: (addr, len) => this.rib.loc.destinationV4(addr, len),
    });
  }

  /** Wait until queued RIB work (and FIB writes) is done. */
  async settle(): Promise<void> {
    await this.rib.drain();
    await this.fib?.flush();
  }

  // ─── peers ───────────────────────────────────────────────────────────────────────────────

  private addPeer(cfg: PeerConfig): void {
    const id = peerId(cfg);
    const local = this.transportLocal(cfg);
    const rt: PeerRuntime = {
      cfg,
      id,
      transport: undefined as unknown as PeerTransport,
      state: 'Idle',
      since: new Date(),
      info: '',
      lastError: undefined,
      negotiated: undefined,
      localAddress: undefined,
      source: undefined,
      encoding: undefined,
      advertising: false,
      suspended: undefined,
      pending: 0,
      inputPaused: false,
      inputPauses: 0,
    };
    this.peers.set(id, rt);
    rt.transport = this.opts.transport(cfg, local, {
      state: (from, to, reason, detail) => this.onState(rt, from, to, reason, detail),
      established: (neg, localAddress) => void this.onEstablished(rt, neg, localAddress),
      update: (u, taw) => this.onUpdate(rt, u, taw),
      refresh: (family) => this.onRefresh(rt, family),
      down: (reason, error) => void this.onDown(rt, reason, error),
    });
    rt.transport.start();
  }

  /** Stop a peer's session (it stays configured as far as the RIB is concerned until deletePeer). */
  private removePeer(id: string, subcode: number): void {
    const rt = this.peers.get(id);
    if (!rt) return;
    this.peers.delete(id);
    this.unsuspend(rt);
    rt.transport.stop(subcode);
    rt.transport.dispose?.();
    this.out.leave(id);
    // Routes go through the normal down path (GR does not apply to a deliberate reset).
    this.gr.clear(id);
    void this.rib.removePeer(id);
  }

  private async deletePeer(id: string): Promise<void> {
    this.removePeer(id, CeaseSub.PEER_DECONFIGURED);
    this.deferral?.peerDown(id);
    await this.rib.removePeer(id);
  }

  private transportLocal(cfg: PeerConfig): TransportLocal {
    const families = familiesOf(cfg);
    const addPaths: TransportLocal['addPaths'] = {};
    for (const f of families) addPaths[f] = cfg.addPaths ?? 'none';
    const local: TransportLocal = { asNumber: cfg.localAsNumber ?? this.config.asNumber, routerId: this.config.routerId, families, addPaths };
    if (cfg.gracefulRestart !== false) {
      const restarting = this.config.gracefulRestart?.restarting === true && (this.deferral?.active ?? true);
      local.gracefulRestart = {
        restartTime: cfg.gracefulRestart?.restartTime ?? 120,
        restarting,
        // F bit: forwarding state survives our restarts when we install into a FIB, or when the
        // owner of the kernel routes (felix in tabby-node) keeps them.
        forwarding: this.fib || this.config.gracefulRestart?.forwardingPreserved ? families : [],
      };
    }
    return local;
  }

  private onState(rt: PeerRuntime, from: BgpState, to: BgpState, reason: string, detail?: string): void {
    if (this.peers.get(rt.id) !== rt) return;
    rt.state = to;
    rt.since = new Date();
    rt.info = rt.suspended ? rt.suspended.reason : detail ? `${reason}: ${detail}` : reason;
    this.log.info({ peer: rt.id, from, to, reason, detail }, `peer ${rt.id} ${from} -> ${to}`);
    const ev: PeerStateEvent = { peer: rt.id, from, to, reason };
    if (detail !== undefined) ev.detail = detail;
    this.emit('peer-state', ev);
  }

  private grCap(neg: Negotiated): PeerGrCapability | undefined {
    const g = neg.gracefulRestart;
    return g ? { restartTime: g.restartTime, restarting: g.restarting, families: g.families } : undefined;
  }

  private ribPeer(rt: PeerRuntime, source: PathSource): Parameters<Rib['addPeer']>[0] {
    const policy = this.importPolicies.get(rt.id);
    const p: Parameters<Rib['addPeer']>[0] = { source, import: { allowLocalAs: rt.cfg.allowLocalAs ?? 0 } };
    if (policy && !policy.empty) p.accept = (ctx) => policy.evaluate(ctx);
    if (rt.cfg.maxPrefixes !== undefined) p.maxPrefixes = rt.cfg.maxPrefixes;
    return p;
  }

  private async onEstablished(rt: PeerRuntime, neg: Negotiated, localAddress: string): Promise<void> {
    if (this.peers.get(rt.id) !== rt) return;
    rt.negotiated = neg;
    rt.localAddress = localAddress;
    rt.lastError = undefined;
    const localAs = rt.cfg.localAsNumber ?? this.config.asNumber;
    rt.source = Object.freeze({
      id: rt.id,
      type: neg.peerAs === localAs ? 'ibgp' : 'ebgp',
      address: rt.cfg.address,
      asn: neg.peerAs,
      routerId: neg.peerId,
      rrClient: rt.cfg.routeReflectorClient === true,
    });
    rt.encoding = outEncoding(neg.as4, neg.addPath.send, neg.extendedMessage);
    this.rib.addPeer(this.ribPeer(rt, rt.source));
    await this.gr.peerUp(rt.id, this.grCap(neg));
    if (this.deferral?.active) {
      this.deferral.peerEstablished(rt.id, this.grCap(neg));
      // Every configured peer is up: nobody else to wait for than the End-of-RIBs awaited (none
      // when all peers restart too — Calico #7144 — or do not do GR): release without the bound.
      if ([...this.peers.values()].every((p) => p.negotiated !== undefined)) this.deferral.settle();
      return;
    }
    this.advertise(rt, true);
  }

  /** Join the update groups for the negotiated families: full table, then End-of-RIB. */
  private advertise(rt: PeerRuntime, endOfRib: boolean): void {
    const neg = rt.negotiated;
    if (!neg || !rt.source) return;
    rt.advertising = true;
    const joined = neg.families.map((family) => this.out.join(rt.id, this.groupSettings(rt, family, neg)));
    if (!endOfRib) return;
    void Promise.all(joined).then(() => {
      // Still the same session: the table went out, mark its end.
      if (rt.negotiated === neg && this.peers.get(rt.id) === rt) rt.transport.send(neg.families.map((f) => buildEndOfRib(f)));
    });
  }

  private groupSettings(rt: PeerRuntime, family: Family, neg: Negotiated): GroupSettings {
    const localAs = rt.cfg.localAsNumber ?? this.config.asNumber;
    const localAddress: Partial<Record<Family, string>> = {};
    const la = rt.localAddress ?? rt.cfg.sourceAddress;
    if (la) localAddress[la.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast'] = la;
    if (rt.cfg.nextHopSelf?.ipv4) localAddress['ipv4-unicast'] = rt.cfg.nextHopSelf.ipv4;
    if (rt.cfg.nextHopSelf?.ipv6) localAddress['ipv6-unicast'] = rt.cfg.nextHopSelf.ipv6;
    const policy = this.exportPolicies.get(rt.id);
    const s: GroupSettings = {
      family,
      type: neg.peerAs === localAs ? 'ibgp' : 'ebgp',
      rrClient: rt.cfg.routeReflectorClient === true,
      nextHopMode: rt.cfg.nextHopMode ?? 'auto',
      localAddress,
      localAs,
      addPathTx: neg.addPath.send.includes(family),
      policyId: `${this.policyVersion}|${(rt.cfg.filters ?? []).join(',')}`,
      decorate: (prefix, attrs) => this.prefixAds.apply(prefix, attrs),
    };
    if (policy && !policy.empty) {
      s.accept = (ctx) => {
        const r: RouteContext = { family: ctx.family, prefix: ctx.prefix, source: ctx.path.source, attrs: ctx.attrs };
        if (ctx.path.attrs.priority !== undefined) r.priority = ctx.path.attrs.priority;
        return policy.evaluate(r);
      };
    }
    return s;
  }

  private sendBatch(peer: string, b: OutBatch): void {
    const rt = this.peers.get(peer);
    if (!rt || !rt.encoding || rt.state !== 'Established') return;
    try {
      rt.transport.send(encodeBatch(b, rt.encoding));
    } catch (err) {
      this.emit('warning', { peer, message: `cannot encode UPDATE: ${errorMessage(err)}` });
    }
  }

  private onUpdate(rt: PeerRuntime, u: UpdateMessage, treatAsWithdraw: boolean): void {
    if (this.peers.get(rt.id) !== rt) return;
    if (u.endOfRib) {
      const family = u.endOfRib.family;
      if (!family) return;
      void this.rib.drain().then(async () => {
        await this.gr.endOfRib(rt.id, family);
        this.deferral?.endOfRib(rt.id);
      });
      return;
    }
    // One operation per NLRI group (not per prefix): a table transfer queues one object per UPDATE.
    // IPv4 prefixes the decoder kept as wire bytes go to the RIB so (read as numbers there).
    const ops: RibOp[] = [];
    for (const g of u.withdraw) {
      const packed = packedNlri(g);
      if (packed) {
        if (packed.count) ops.push({ kind: 'withdraw-v4', nlri: packed });
      } else if (g.nlri.length) ops.push({ kind: 'withdraw-nlri', family: g.family, nlri: g.nlri });
    }
    for (const g of u.announce) {
      const packed = packedNlri(g);
      if (packed ? !packed.count : !g.nlri.length) continue;
      if (treatAsWithdraw) {
        ops.push(packed ? { kind: 'withdraw-v4', nlri: packed } : { kind: 'withdraw-nlri', family: g.family, nlri: g.nlri });
        continue;
      }
      const attrs: PathAttributes = g.nextHop === u.attributes.nextHop ? u.attributes : { ...u.attributes, nextHop: g.nextHop };
      ops.push(packed ? { kind: 'announce-v4', nlri: packed, attrs } : { kind: 'announce-nlri', family: g.family, nlri: g.nlri, attrs });
    }
    if (ops.length) this.submit(rt, ops);
  }

  /** Queue a peer's operations; pause reading from it while too many wait (TCP backpressure). */
  private submit(rt: PeerRuntime, ops: RibOp[]): void {
    const max = this.config.maxPendingRoutes ?? DEFAULT_MAX_PENDING_ROUTES;
    // Routes, not operations: one operation carries a whole UPDATE group.
    let routes = 0;
    for (const op of ops) routes += opSize(op);
    rt.pending += routes;
    if (!rt.inputPaused && rt.pending > max && rt.transport.pauseInput) {
      rt.inputPaused = true;
      rt.inputPauses++;
      this.log.debug({ peer: rt.id, pending: rt.pending }, 'RIB behind: pausing input');
      rt.transport.pauseInput();
    }
    void this.rib.submit(rt.id, ops).then(() => {
      rt.pending -= routes;
      if (rt.inputPaused && rt.pending <= max / 2) {
        rt.inputPaused = false;
        this.log.debug({ peer: rt.id, pending: rt.pending }, 'RIB caught up: resuming input');
        rt.transport.resumeInput?.();
      }
    });
  }

  private onRefresh(rt: PeerRuntime, family: Family): void {
    const neg = rt.negotiated;
    if (!neg || !rt.advertising || !neg.families.includes(family)) return;
    this.out.leave(rt.id, family);
    void this.out.join(rt.id, this.groupSettings(rt, family, neg)).then(() => {
      if (rt.negotiated === neg) rt.transport.send([buildEndOfRib(family)]);
    });
  }

  private async onDown(rt: PeerRuntime, reason: string, error?: string): Promise<void> {
    if (error && !rt.suspended) rt.lastError = error;
    if (this.peers.get(rt.id) !== rt) return;
    rt.info = rt.suspended?.reason ?? error ?? reason;
    rt.advertising = false;
    this.out.leave(rt.id);
    const neg = rt.negotiated;
    rt.negotiated = undefined;
    rt.encoding = undefined;
    this.deferral?.peerDown(rt.id);
    // We closed the session with a NOTIFICATION (max prefixes): no graceful restart for it.
    if (neg) await this.gr.peerDown(rt.id, rt.suspended ? undefined : this.grCap(neg), neg.families);
  }

  private onRibNotice(n: RibNotice): void {
    if (n.kind === 'import-drop') {
      this.log.debug({ peer: n.peerId, prefix: n.prefix, reason: n.reason }, 'route dropped on import');
      return;
    }
    const rt = this.peers.get(n.peerId);
    const message = `max prefixes reached (${n.limit})`;
    if (!rt || rt.suspended) return;
    const wait = rt.cfg.maxPrefixRestartTime ?? DEFAULT_MAX_PREFIX_RESTART_TIME;
    this.emit('warning', { peer: n.peerId, message: wait > 0 ? `${message}: session closed (Cease 1), reconnecting in ${wait}s` : `${message}: session closed (Cease 1) until the configuration changes` });
    rt.lastError = message;
    rt.info = message;
    // Like BIRD's `receive limit N action restart`: down now, back after the idle time.
    rt.suspended = { reason: message, restartAt: wait > 0 ? Date.now() + wait * 1000 : undefined, timer: undefined };
    if (wait > 0) rt.suspended.timer = this.clock.setTimeout(() => this.resume(rt), wait * 1000);
    const family = rt.negotiated?.families[0] ?? familiesOf(rt.cfg)[0] ?? 'ipv4-unicast';
    rt.transport.stop(CeaseSub.MAX_PREFIXES, message, maxPrefixData(family, n.limit));
  }

  /** Restart a session stopped by the max-prefix limit. */
  private resume(rt: PeerRuntime): void {
    if (!rt.suspended || this.peers.get(rt.id) !== rt) return;
    this.unsuspend(rt);
    this.log.info({ peer: rt.id }, `peer ${rt.id}: restarting after the max-prefix idle time`);
    rt.transport.start();
  }

  private unsuspend(rt: PeerRuntime): void {
    if (rt.suspended?.timer !== undefined) this.clock.clearTimeout(rt.suspended.timer);
    rt.suspended = undefined;
  }

  private onRibChanges(changes: readonly DestChange[]): void {
    if (this.fib) {
      this.fib.apply(changes);
      if (!this.fibFlushQueued) {
        this.fibFlushQueued = true;
        setImmediate(() => {
          this.fibFlushQueued = false;
          void this.fib?.flush();
        });
      }
    }
    if (!this.deferral?.active) this.out.apply(changes);
    if (this.listenerCount('best-path') > 0) {
      for (const c of changes) {
        if (!c.bestChanged) continue;
        const d = c.dest;
        this.emit('best-path', { family: d.family, prefix: d.prefix, best: d.best, previous: c.previousBest, reason: d.reason, multipath: d.multipath });
      }
    }
  }

  private endDeferral(why: string): void {
    this.log.info({ why }, 'graceful restart: advertising after selection deferral');
    // The restart is over: a session that comes up again later must not claim it (R bit).
    for (const rt of this.peers.values()) rt.transport.restartDone?.();
    for (const rt of this.peers.values()) if (rt.negotiated && !rt.advertising) this.advertise(rt, true);
    void this.fib?.release();
  }

  // ─── configuration pieces ──────────────────────────────────────────────────────────────

  private localIdentity(): LocalIdentity {
    const l: LocalIdentity = { asn: this.config.asNumber, routerId: this.config.routerId };
    if (this.config.clusterId) l.clusterId = this.config.clusterId;
    return l;
  }

  private isReflector(): boolean {
    return this.config.clusterId !== undefined || this.config.peers.some((p) => p.routeReflectorClient);
  }

  private compilePolicies(): void {
    const byName = new Map((this.config.filters ?? []).map((f) => [f.name, f]));
    this.importPolicies = new Map();
    this.exportPolicies = new Map();
    this.policyVersion++;
    for (const p of this.config.peers) {
      const filters = (p.filters ?? []).map((n) => {
        const f = byName.get(n);
        if (!f) this.emit('warning', { peer: peerId(p), message: `BGPFilter ${n} not found; ignored` });
        return f;
      });
      const present = filters.filter((f) => f !== undefined);
      const opts = this.config.routePriority !== undefined ? { defaultPriority: this.config.routePriority } : {};
      this.importPolicies.set(peerId(p), new Policy(present, 'import', opts));
      this.exportPolicies.set(peerId(p), new Policy(present, 'export', opts));
    }
  }

  private async applyOriginate(prev: ReadonlyArray<string | OriginateConfig>, next: ReadonlyArray<string | OriginateConfig>): Promise<void> {
    const norm = (o: string | OriginateConfig): OriginateConfig => (typeof o === 'string' ? { prefix: o } : o);
    const before = new Map(prev.map((o) => [norm(o).prefix, JSON.stringify(norm(o))]));
    const after = new Map(next.map((o) => [norm(o).prefix, norm(o)]));
    const known = new Set(this.rib.originated().map((o) => o.prefix));
    for (const p of before.keys()) if (!after.has(p) && known.has(p)) await this.rib.withdrawLocal(familyOfPrefix(p), p);
    for (const [p, o] of after) {
      if (known.has(p) && before.get(p) === JSON.stringify(o)) continue;
      const attrs: PathAttributes = { origin: 0, asPath: [] };
      for (const c of o.communities ?? []) {
        const v = parseCommunity(c);
        if (v.kind === 'standard') (attrs.communities ??= []).push(v.value);
        else (attrs.largeCommunities ??= []).push(v.value);
      }
      await this.rib.originate(familyOfPrefix(p), p, attrs, o.interface);
    }
  }

  private peerStatus(rt: PeerRuntime): PeerStatus {
    const counts = this.rib.counts(rt.id);
    const neg = rt.negotiated;
    const localAs = rt.cfg.localAsNumber ?? this.config.asNumber;
    const s: PeerStatus = {
      id: rt.id,
      address: rt.cfg.address,
      port: rt.cfg.port ?? 179,
      asNumber: rt.cfg.asNumber,
      peerType: rt.cfg.description ?? (rt.cfg.asNumber === localAs ? 'iBGP' : 'eBGP'),
      state: rt.state,
      since: rt.since.toISOString(),
      info: rt.suspended ? suspendedInfo(rt.suspended) : rt.info,
      routeReflectorClient: rt.cfg.routeReflectorClient === true,
      prefixes: { received: counts.received, accepted: counts.accepted, advertised: this.out.advertisedTo(rt.id) },
      capabilities: neg ? capabilityNames(neg) : [],
      gracefulRestartStale: this.gr.isStale(rt.id),
    };
    if (rt.pending > 0) s.pendingRoutes = rt.pending;
    if (rt.inputPaused) s.inputPaused = true;
    if (rt.inputPauses > 0) s.inputPauses = rt.inputPauses;
    if (rt.lastError) s.lastError = rt.lastError;
    if (neg) {
      s.holdTime = neg.holdTime;
      s.peerRouterId = neg.peerId;
    }
    return s;
  }
}

/** Seconds a session stopped by the max-prefix limit stays down before reconnecting (BIRD's error wait time). */
export const DEFAULT_MAX_PREFIX_RESTART_TIME = 60;
export const DEFAULT_MAX_PENDING_ROUTES = 65536;

function suspendedInfo(s: NonNullable<PeerRuntime['suspended']>): string {
  if (s.restartAt === undefined) return `${s.reason}; stays down until the configuration changes`;
  return `${s.reason}; reconnecting in ${Math.max(0, Math.ceil((s.restartAt - Date.now()) / 1000))}s`;
}

export { familyOfPrefix };

export function capabilityNames(neg: Negotiated): string[] {
  const out: string[] = [...neg.families];
  if (neg.as4) out.push('as4');
  if (neg.routeRefresh) out.push('route-refresh');
  if (neg.enhancedRouteRefresh) out.push('enhanced-route-refresh');
  if (neg.extendedMessage) out.push('extended-message');
  if (neg.gracefulRestart) out.push(`graceful-restart(${neg.gracefulRestart.restartTime}s)`);
  for (const f of neg.addPath.receive) out.push(`add-path rx ${f}`);
  for (const f of neg.addPath.send) out.push(`add-path tx ${f}`);
  return out;
}

function asPathString(a: Readonly<PathAttributes>): string {
  return (a.asPath ?? [])
    .map((s) => (s.type === AsPathSegmentType.AS_SET ? `{${s.asns.join(',')}}` : s.type === AsPathSegmentType.AS_SEQUENCE ? s.asns.join(' ') : `(${s.asns.join(' ')})`))
    .join(' ');
}

function routePath(p: Path, best: boolean, multipath: boolean): RoutePath {
  const a = p.attrs;
  const r: RoutePath = {
    from: p.source.id,
    asPath: asPathString(a),
    origin: a.origin === 0 ? 'IGP' : a.origin === 1 ? 'EGP' : 'incomplete',
    communities: [
      ...(a.communities ?? []).map((c) => `${c >>> 16}:${c & 0xffff}`),
      ...(a.largeCommunities ?? []).map((l) => l.join(':')),
    ],
    pathId: p.pathId,
    best,
    multipath: multipath && !best,
    stale: p.stale,
  };
  if (a.nextHop !== undefined) r.nextHop = a.nextHop;
  if (a.localPref !== undefined) r.localPref = a.localPref;
  if (a.med !== undefined) r.med = a.med;
  if (a.originatorId !== undefined) r.originatorId = a.originatorId;
  if (a.clusterList !== undefined) r.clusterList = [...a.clusterList];
  return r;
}
