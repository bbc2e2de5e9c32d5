/**
 * RouteTable: desired routes vs the kernel's main table, reconciled over netlink.
 *
 * - `setRoutes()` only updates memory (no I/O) and schedules an apply.
 * - `apply()` is the only place doing I/O: when a resync is queued it dumps links and the owned routes
 *   (the *dataplane* side), then sends the minimal difference as one batch: deletions first, then
 *   `replace` for missing or different routes.
 * - Ownership: a route is ours when it carries our protocol number, or is `proto boot` on one of our
 *   interfaces (the workload prefix, the IPIP/VXLAN devices: what the CNI plugin writes). Nothing else
 *   is ever deleted or rewritten.
 * - Drift: a route event that contradicts the desired state updates the tracker and triggers an apply
 *   at once (no dump); link events and event-socket overflows queue a full resync after a short
 *   debounce; a periodic full resync (routeRefreshInterval) catches anything else. Errors retry after
 *   `retryMs`.
 * - stop() leaves the kernel routes in place (pods keep forwarding); start() reconciles.
 */
import type { Logger } from '../lib/log.js';
import { silentLogger } from '../lib/log.js';
import { canonicalCidrText, canonicalIp } from '../api/net.js';
import { AF, RTN, RTPROT, RT_SCOPE, RT_TABLE, type Link, type NetlinkEvent, type Route } from '../netlink/index.js';
import { DEFAULT_NAMES, type DataplaneNames, type DesiredRoute } from './model.js';
import type { DataplaneNetlink, RouteOp, Unsubscribe } from './shim.js';
import { DeltaTracker } from './delta.js';

export interface RouteTableOptions {
  nl: DataplaneNetlink;
  names?: Partial<DataplaneNames>;
  log?: Logger;
  /** Delay between a drift event and the resync (coalesces bursts). Default 20 ms. */
  debounceMs?: number;
  /** Periodic full resync (FelixConfiguration routeRefreshInterval). Default 90 s; 0 disables. */
  refreshIntervalMs?: number;
  /** Retry delay after a failed apply. Default 1 s. */
  retryMs?: number;
  /** Unwanted routes on a workload interface seen less than this long ago are kept. Default 10 s. */
  gracePeriodMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

export interface RouteTableStats {
  /** Routes written (replace) / deleted since start. */
  adds: number;
  dels: number;
  /** Failed route operations and failed dumps. */
  errors: number;
  applies: number;
  resyncs: number;
  /** Wall time of the last apply (resync included), ms. */
  lastApplyMs: number;
  lastError?: string;
  /** Desired routes waiting for their interface to appear. */
  waitingForInterface: number;
}

/** A route in comparable form: interface by name, addresses canonical. */
interface KernelRoute {
  family: 2 | 10;
  dst: string;
  priority: number;
  kind: 'unicast' | 'blackhole' | 'other';
  dev?: string;
  gw?: string;
  onlink: boolean;
  scope: number;
  protocol: number;
  /** As dumped: used to delete exactly this route. */
  raw?: Route;
}

function canonDst(dst: string): string {
  return canonicalCidrText(dst) ?? dst;
}
function canonIp(ip: string): string {
  return canonicalIp(ip) ?? ip;
}

const defaultPriority = (family: 2 | 10): number => (family === AF.INET6 ? 1024 : 0);
const keyOf = (r: { dst: string; priority: number }): string => `${r.dst}|${r.priority}`;
const sameRoute = (a: KernelRoute, b: KernelRoute): boolean =>
  a.kind === b.kind && a.dev === b.dev && a.gw === b.gw && a.onlink === b.onlink && a.scope === b.scope && a.protocol === b.protocol;

export class RouteTable {
  readonly stats: RouteTableStats = { adds: 0, dels: 0, errors: 0, applies: 0, resyncs: 0, lastApplyMs: 0, waitingForInterface: 0 };
  private readonly nl: DataplaneNetlink;
  private readonly names: DataplaneNames;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private readonly refreshIntervalMs: number;
  private readonly retryMs: number;
  private readonly gracePeriodMs: number;
  private readonly now: () => number;
  private readonly firstSeen = new Map<string, number>();
  private readonly routes = new DeltaTracker<string, KernelRoute>(sameRoute);
  private ifindex = new Map<string, number>();
  private ifname = new Map<number, string>();
  private resyncNeeded = true;
  private dirty = true;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private timerLater = false;
  private refreshTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private sub: Unsubscribe | undefined;
  private started = false;
  private failed = false;

  constructor(opts: RouteTableOptions) {
    this.nl = opts.nl;
    this.names = { ...DEFAULT_NAMES, ...opts.names };
    this.log = opts.log ?? silentLogger();
    this.debounceMs = opts.debounceMs ?? 20;
    this.refreshIntervalMs = opts.refreshIntervalMs ?? 90_000;
    this.retryMs = opts.retryMs ?? 1000;
    this.gracePeriodMs = opts.gracePeriodMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Replaces the whole desired set (no I/O); an apply follows when started. */
  setRoutes(routes: readonly DesiredRoute[]): void {
    const next = new Map<string, KernelRoute>();
    for (const r of routes) {
      const kr = this.fromDesired(r);
      next.set(keyOf(kr), kr);
    }
    this.routes.setDesired(next);
    this.dirty = true;
    this.schedule(0);
  }

  /** Subscribes to route/link events, reconciles once, starts the periodic resync. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.nl.subscribe) {
      this.sub = this.nl.subscribe(['link', 'ipv4-route', 'ipv6-route'], (ev) => this.onEvent(ev), (err) => {
        this.stats.errors++;
        this.stats.lastError = `event socket: ${String(err)}`;
        this.log.warn({ err }, 'route event subscription failed; relying on periodic resync');
      });
    }
    if (this.refreshIntervalMs > 0) {
      this.refreshTimer = setInterval(() => this.queueResync(0), this.refreshIntervalMs);
      this.refreshTimer.unref();
    }
    this.resyncNeeded = true;
    this.dirty = true;
    await this.apply();
  }

  /** Stops events and timers. Kernel routes stay as they are. */
  async stop(): Promise<void> {
    this.started = false;
    this.sub?.close();
    this.sub = undefined;
    if (this.timer) clearTimeout(this.timer);
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.timer = this.refreshTimer = undefined;
    this.timerAt = Infinity;
    await this.running;
  }

  /** Forces a dump of the kernel state before the next apply. */
  queueResync(delayMs = this.debounceMs): void {
    this.resyncNeeded = true;
    this.dirty = true;
    this.schedule(delayMs);
  }

  /** Resolves once no apply is running or about to run (a retry after a failure does not count). */
  async settled(): Promise<void> {
    while (this.running || (this.timer && !this.timerLater)) {
      if (this.running) await this.running;
      else await new Promise((r) => setTimeout(r, Math.max(1, this.timerAt - Date.now())));
    }
  }

  /** Runs one reconciliation now (also what timers call). Concurrent calls share the run. */
  async apply(): Promise<void> {
    if (this.running) {
      this.dirty = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        while (this.dirty) {
          this.dirty = false;
          await this.applyOnce();
        }
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Tells the table about a link it may not have seen an event for yet (e.g. a device just created). */
  learnLink(l: Link): void {
    this.setLink(l);
  }

  /** True when the last apply left errors behind (a retry is scheduled). */
  lastApplyFailed(): boolean {
    return this.failed;
  }

  /** The desired routes with no ifindex yet, by dst (for status). */
  waiting(): string[] {
    const out: string[] = [];
    for (const [, r] of this.routes.desired()) if (r.dev && !this.ifindex.has(r.dev)) out.push(r.dst);
    return out;
  }

  // ---------------------------------------------------------------------------------------------

  /** `later`: a retry or grace-period expiry, which settled() does not wait for. */
  private schedule(delayMs: number, later = false): void {
    if (!this.started) return;
    const at = Date.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timerLater = later;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.dirty = true;
      void this.apply();
    }, delayMs);
  }

  private owns(r: KernelRoute): boolean {
    if (r.protocol === this.names.routeProtocol) return true;
    return r.protocol === RTPROT.BOOT && r.dev !== undefined && this.ownedIface(r.dev);
  }

  private ownedIface(name: string): boolean {
    return name.startsWith(this.names.interfacePrefix) || name === this.names.ipipDevice || name === this.names.vxlanDevice || name === this.names.vxlanDeviceV6;
  }

  private fromDesired(r: DesiredRoute): KernelRoute {
    const dst = canonDst(r.dst);
    const family = dst.includes(':') ? AF.INET6 : AF.INET;
    const kr: KernelRoute = {
      family,
      dst,
      priority: defaultPriority(family),
      kind: r.kind,
      onlink: r.onlink === true,
      // IPv6 has no route scopes: the kernel reports universe for every v6 route
      scope: r.scope === 'link' && family === AF.INET ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE,
      protocol: this.names.routeProtocol,
    };
    if (r.dev !== undefined && r.kind === 'unicast') kr.dev = r.dev;
    if (r.gw !== undefined && r.kind === 'unicast') kr.gw = canonIp(r.gw);
    return kr;
  }

  private fromKernel(r: Route): KernelRoute | undefined {
    if ((r.table ?? RT_TABLE.MAIN) !== RT_TABLE.MAIN || r.dst === undefined || r.multipath?.length) return undefined;
    const family = r.family ?? (r.dst.includes(':') ? AF.INET6 : AF.INET);
    const kr: KernelRoute = {
      family,
      dst: canonDst(r.dst),
      priority: r.priority ?? 0,
      kind: r.type === RTN.BLACKHOLE ? 'blackhole' : r.type === RTN.UNICAST ? 'unicast' : 'other',
      onlink: r.onlink === true,
      scope: r.scope ?? RT_SCOPE.UNIVERSE,
      protocol: r.protocol ?? 0,
      raw: r,
    };
    // v6 blackholes are reported on `lo`: the device is meaningless for them
    if (r.oif !== undefined && kr.kind !== 'blackhole') kr.dev = this.ifname.get(r.oif) ?? `#${r.oif}`;
    if (r.gw !== undefined) kr.gw = canonIp(r.gw);
    return kr;
  }

  private toNetlink(r: KernelRoute): Route {
    const out: Route = {
      family: r.family,
      dst: r.dst,
      table: RT_TABLE.MAIN,
      protocol: r.protocol,
      type: r.kind === 'blackhole' ? RTN.BLACKHOLE : RTN.UNICAST,
      scope: r.scope,
    };
    if (r.priority) out.priority = r.priority;
    if (r.gw !== undefined) out.gw = r.gw;
    if (r.onlink) out.onlink = true;
    if (r.dev !== undefined) out.oif = this.ifindex.get(r.dev) as number;
    return out;
  }

  private deleteSpec(r: KernelRoute): Route {
    const raw = r.raw;
    const out: Route = { family: r.family, dst: r.dst, table: RT_TABLE.MAIN, protocol: r.protocol };
    if (r.priority) out.priority = r.priority;
    if (raw?.oif !== undefined) out.oif = raw.oif;
    if (raw?.type !== undefined) out.type = raw.type;
    if (raw?.tos) out.tos = raw.tos;
    return out;
  }

  private onEvent(ev: NetlinkEvent): void {
    if (ev.kind === 'overflow') return this.queueResync();
    if (ev.kind === 'link') {
      const { name, index } = ev.link;
      if (ev.action === 'new') {
        const old = this.ifindex.get(name);
        this.setLink(ev.link);
        if (old === index) return; // attribute change only (up/down, mtu): routes unaffected
      } else {
        this.ifindex.delete(name);
        this.ifname.delete(index);
        this.firstSeen.delete(name);
      }
      if (this.ownedIface(name) || this.desiresDev(name)) this.queueResync();
      return;
    }
    if (ev.kind !== 'route') return;
    const kr = this.fromKernel(ev.route);
    if (!kr) return;
    // Targeted repair: the event says exactly what changed, so update the dataplane side of the
    // tracker and apply without a dump. Stale events (our own earlier writes) cost at most one
    // redundant write; the periodic resync backs this up.
    const key = keyOf(kr);
    const want = this.routes.desired().get(key);
    if (ev.action === 'del') {
      if (want === undefined && !this.routes.dataplane().has(key)) return;
      this.routes.dataplaneDelete(key);
    } else {
      if (want === undefined ? !this.owns(kr) : sameRoute(want, kr)) return;
      this.routes.dataplaneSet(key, kr);
    }
    this.dirty = true;
    this.schedule(0);
  }

  private desiresDev(name: string): boolean {
    for (const [, r] of this.routes.desired()) if (r.dev === name) return true;
    return false;
  }

  /**
   * Routes on a workload interface younger than the grace period are left alone: the CNI plugin adds
   * the route before the workload endpoint reaches us (Calico's RouteCleanupGracePeriod).
   */
  private graceUntil(r: KernelRoute): number | undefined {
    if (r.dev === undefined || !r.dev.startsWith(this.names.interfacePrefix)) return undefined;
    const until = (this.firstSeen.get(r.dev) ?? 0) + this.gracePeriodMs;
    return until > this.now() ? until : undefined;
  }

  private setLink(l: Link): void {
    if (this.ifindex.get(l.name) !== l.index) this.firstSeen.set(l.name, this.now());
    const old = this.ifname.get(l.index);
    if (old !== undefined && old !== l.name) this.ifindex.delete(old);
    this.ifindex.set(l.name, l.index);
    this.ifname.set(l.index, l.name);
  }

  private async resync(): Promise<void> {
    this.stats.resyncs++;
    const links = await this.nl.linkList();
    const known = this.ifindex;
    this.ifindex = new Map();
    this.ifname = new Map();
    for (const l of links) {
      if (known.get(l.name) === l.index) this.ifindex.set(l.name, l.index);
      this.setLink(l);
    }
    for (const name of this.firstSeen.keys()) if (!this.ifindex.has(name)) this.firstSeen.delete(name);
    const actual = new Map<string, KernelRoute>();
    for (const family of [AF.INET, AF.INET6] as const) {
      for (const r of await this.nl.routeList({ family, table: RT_TABLE.MAIN })) {
        const kr = this.fromKernel(r);
        if (kr && this.owns(kr)) actual.set(keyOf(kr), kr);
      }
    }
    this.routes.setDataplane(actual);
    this.resyncNeeded = false;
  }

  private async applyOnce(): Promise<void> {
    const t0 = performance.now();
    this.stats.applies++;
    this.failed = false;
    try {
      if (this.resyncNeeded) await this.resync();
    } catch (err) {
      this.fail(`route dump failed: ${String(err)}`, err);
      return;
    }
    const ops: RouteOp[] = [];
    const keys: Array<{ key: string; route?: KernelRoute }> = [];
    let graceUntil = Infinity;
    for (const [key, r] of this.routes.pendingDeletions()) {
      const until = this.graceUntil(r);
      if (until !== undefined) {
        graceUntil = Math.min(graceUntil, until);
        continue;
      }
      ops.push({ op: 'del', route: this.deleteSpec(r) });
      keys.push({ key });
    }
    if (graceUntil !== Infinity) this.schedule(Math.max(1, graceUntil - this.now()), true);
    let waiting = 0;
    for (const [key, r] of this.routes.pendingUpdates()) {
      if (r.dev !== undefined && !this.ifindex.has(r.dev)) {
        waiting++;
        continue;
      }
      ops.push({ op: 'replace', route: this.toNetlink(r) });
      keys.push({ key, route: r });
    }
    this.stats.waitingForInterface = waiting;
    if (ops.length === 0) {
      this.stats.lastApplyMs = performance.now() - t0;
      return;
    }
    let errors: Array<Error | undefined>;
    try {
      errors = await this.nl.applyRoutes(ops);
    } catch (err) {
      this.fail(`route batch failed: ${String(err)}`, err);
      return;
    }
    const failures: string[] = [];
    ops.forEach((op, i) => {
      const err = errors[i];
      const k = keys[i] as { key: string; route?: KernelRoute };
      if (err && !(op.op === 'del' && (err as { code?: string }).code === 'ESRCH')) {
        failures.push(`${op.op} ${op.route.dst}: ${err.message}`);
        return;
      }
      if (op.op === 'del') {
        this.stats.dels++;
        this.routes.dataplaneDelete(k.key);
      } else {
        this.stats.adds++;
        this.routes.dataplaneSet(k.key, k.route as KernelRoute);
      }
    });
    this.stats.lastApplyMs = performance.now() - t0;
    if (failures.length) {
      this.stats.errors += failures.length;
      this.fail(`${failures.length} route operation(s) failed: ${failures.slice(0, 5).join('; ')}`);
    } else {
      this.log.debug({ ops: ops.length, ms: this.stats.lastApplyMs }, 'routes applied');
    }
  }

  private fail(msg: string, err?: unknown): void {
    this.failed = true;
    if (err !== undefined) this.stats.errors++;
    this.stats.lastError = msg;
    this.log.warn({ err }, msg);
    this.resyncNeeded = true;
    this.schedule(this.retryMs, true);
  }
}
