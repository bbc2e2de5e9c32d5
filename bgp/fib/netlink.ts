/**
 * A FibSink on the kernel routing table through the netlink library: our own route protocol
 * number (ownership: we only list and delete routes carrying it), ECMP as multipath routes,
 * `replace` semantics (no window without a route). Routes stay when the daemon exits, so
 * forwarding survives a restart; the next start adopts them (FibInstaller.adoptInstalled).
 */
import { Netlink, NetlinkError, type Route } from '../../netlink/index.js';
import type { Family } from '../types.js';
import type { FibOp, FibRoute, FibSink } from './sink.js';

export interface NetlinkFibOptions {
  /** rtm_protocol marking our routes (BIRD uses 12; Calico's BIRD config "proto bird"). Default 80. */
  protocol?: number;
  table?: number;
  metric?: number;
  /** Network namespace name or path (tests). */
  netns?: string;
}

const AF = { 'ipv4-unicast': 2, 'ipv6-unicast': 10 } as const;
const ESRCH = 3;

function defaultMetric(family: Family): number {
  return family === 'ipv6-unicast' ? 1024 : 0;
}

function ignoreGone(err: unknown): void {
  if (err instanceof NetlinkError && err.errno === ESRCH) return;
  throw err;
}

export class NetlinkFibSink implements FibSink {
  private readonly nl: Netlink;
  private readonly protocol: number;

  constructor(private readonly opts: NetlinkFibOptions = {}) {
    // asyncSend: the kernel inserts the routes inside sendmsg(); on a libuv pool thread that work
    // runs on the other core while the main thread goes on decoding and selecting.
    this.nl = Netlink.open({ ...(opts.netns !== undefined ? { netns: opts.netns } : {}), asyncSend: true });
    this.protocol = opts.protocol ?? 80;
  }

  /**
   * The metric is part of a kernel route's identity: a route whose priority changed is a new
   * route, and the one with the old metric must be deleted. Metrics we installed, by prefix, only
   * where they differ from the base metric (absent = base or not installed): a million routes
   * with the default metric cost nothing here.
   */
  private readonly metrics = new Map<string, number>();

  /** The metric of routes without a priority of their own. */
  private baseMetric(family: Family): number {
    return this.opts.metric ?? defaultMetric(family);
  }

  private remember(family: Family, prefix: string, metric: number): void {
    if (metric === this.baseMetric(family)) this.metrics.delete(prefix);
    else this.metrics.set(prefix, metric);
  }

  private base(family: Family, prefix: string, metric?: number): Route {
    const r: Route = { family: AF[family], dst: prefix, protocol: this.protocol };
    if (this.opts.table !== undefined) r.table = this.opts.table;
    if (metric !== undefined) r.priority = metric;
    return r;
  }

  /** The metric the kernel gives the route (its default: 0 for IPv4, 1024 for IPv6). */
  private metricOf(route: FibRoute): number {
    return route.priority ?? this.opts.metric ?? defaultMetric(route.family);
  }

  /** The route with the metric it had, when a replace changes it (undefined: nothing to remove). */
  private staleMetric(route: FibRoute): Route | undefined {
    const m = this.metricOf(route);
    const base = this.baseMetric(route.family);
    const old = this.metrics.get(route.prefix) ?? base;
    this.remember(route.family, route.prefix, m);
    // Not known to be installed with the base metric: the delete may find nothing (ESRCH, ignored).
    return old !== m ? this.base(route.family, route.prefix, old) : undefined;
  }

  private toRoute(route: FibRoute): Route {
    const r = this.base(route.family, route.prefix, this.metricOf(route));
    const first = route.nextHops[0];
    if (route.nextHops.length === 1 && first) r.gw = first.gateway;
    else r.multipath = route.nextHops.map((n) => ({ gw: n.gateway }));
    return r;
  }

  async replace(route: FibRoute): Promise<void> {
    // The old-metric route goes first: a delete with the default metric 0 matches any metric.
    const stale = this.staleMetric(route);
    if (stale) await this.nl.routeDel(stale).catch(ignoreGone);
    await this.nl.routeReplace(this.toRoute(route));
  }

  /**
   * Pipelined: many routes per netlink datagram, one ACK per datagram. The routes are encoded
   * here, synchronously, and `ops` is not kept: while the kernel works only their bytes exist
   * (bench/results/bgpfib.md: objects kept per route across the send were promoted to the old
   * heap, ~200 MB of garbage at 1M routes).
   */
  applyBatch(ops: readonly FibOp[]): Promise<Array<unknown>> {
    const b = this.nl.encodedBatch();
    // Index in the batch of each op's own request (metric changes add a delete before it).
    const at = new Int32Array(ops.length);
    const isDelete = new Uint8Array(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as FibOp;
      if (op.kind === 'replace') {
        const old = this.staleMetric(op.route);
        if (old) b.routeDel(old);
        at[i] = b.size;
        b.routeReplace(this.toRoute(op.route));
      } else {
        // Metric 0 in a delete matches our route whatever its metric.
        this.metrics.delete(op.prefix);
        at[i] = b.size;
        isDelete[i] = 1;
        b.routeDel(this.base(op.family, op.prefix));
      }
    }
    const n = ops.length;
    // Deleting a route that is already gone is not an error.
    return b.run().then((res) => {
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        const e = res.errors[at[i] as number];
        out[i] = e && isDelete[i] === 1 && e instanceof NetlinkError && e.errno === ESRCH ? undefined : e;
      }
      return out;
    });
  }

  async delete(family: Family, prefix: string): Promise<void> {
    this.metrics.delete(prefix);
    await this.nl.routeDel(this.base(family, prefix)).catch(ignoreGone);
  }

  async list(): Promise<Array<{ family: Family; prefix: string }>> {
    const out: Array<{ family: Family; prefix: string }> = [];
    for (const fam of [2, 10] as const) {
      const filter: Parameters<Netlink['routeList']>[0] = { family: fam, protocol: this.protocol };
      if (this.opts.table !== undefined) filter.table = this.opts.table;
      for (const r of await this.nl.routeList(filter)) {
        if (!r.dst) continue;
        const family = fam === 2 ? 'ipv4-unicast' : 'ipv6-unicast';
        out.push({ family, prefix: r.dst });
        // Kept from a previous run: a later replace with another metric must delete this one.
        this.remember(family, r.dst, r.priority ?? defaultMetric(family));
      }
    }
    return out;
  }

  close(): void {
    this.nl.close();
  }
}
