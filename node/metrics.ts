/**
 * Prometheus metrics (prom-client) on prometheusMetricsPort when enabled. When they are off (the
 * default, as Felix) prom-client is never loaded: its module and default-metric collectors cost
 * ≈ 8–12 MB per agent (bench/mesh-scale.ts), and the gauges become no-ops.
 */
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type * as PromClient from 'prom-client';

const noop = { set: () => undefined, inc: () => undefined, observe: () => undefined };

export class NodeMetrics {
  /** Undefined when metrics are disabled. */
  readonly registry: Registry | undefined;
  readonly bgpPeerState: Gauge;
  readonly bgpPrefixes: Gauge;
  readonly bgpExported: Gauge;
  readonly routeApply: Histogram;
  readonly reconcileErrors: Counter;
  readonly ipamAllocations: Gauge;
  readonly datastoreSynced: Gauge;
  readonly ipamGcLeader: Gauge;
  readonly ipamGcCandidates: Gauge;
  readonly ipamGcReclaimed: Counter;
  readonly ipamGcPasses: Counter;
  readonly ipamGcErrors: Counter;

  constructor(defaults = true, enabled = true) {
    if (!enabled) {
      this.registry = undefined;
      const n = noop as unknown as Gauge & Histogram & Counter;
      this.bgpPeerState = this.bgpPrefixes = this.bgpExported = this.ipamAllocations = this.datastoreSynced = n;
      this.ipamGcLeader = this.ipamGcCandidates = n;
      this.routeApply = n;
      this.reconcileErrors = this.ipamGcReclaimed = this.ipamGcPasses = this.ipamGcErrors = n;
      return;
    }
    const prom = createRequire(import.meta.url)('prom-client') as typeof PromClient;
    const registry = new prom.Registry();
    const registers = [registry];
    this.registry = registry;
    this.bgpPeerState = new prom.Gauge({ name: 'tabby_bgp_peer_established', help: '1 when the BGP session is Established', labelNames: ['peer', 'type'], registers });
    this.bgpPrefixes = new prom.Gauge({ name: 'tabby_bgp_prefixes_received', help: 'Prefixes received from a BGP peer', labelNames: ['peer'], registers });
    this.bgpExported = new prom.Gauge({ name: 'tabby_bgp_prefixes_exported', help: 'Prefixes this node originates', registers });
    this.routeApply = new prom.Histogram({ name: 'tabby_route_apply_seconds', help: 'Dataplane apply latency', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers });
    this.reconcileErrors = new prom.Counter({ name: 'tabby_reconcile_errors_total', help: 'Dataplane reconcile errors', registers });
    this.ipamAllocations = new prom.Gauge({ name: 'tabby_ipam_allocations', help: 'IPs allocated in blocks affine to this node', registers });
    this.datastoreSynced = new prom.Gauge({ name: 'tabby_datastore_synced', help: '1 when every watch is in sync', registers });
    this.ipamGcLeader = new prom.Gauge({ name: 'tabby_ipam_gc_leader', help: '1 while this agent holds the IPAM GC lease', registers });
    this.ipamGcCandidates = new prom.Gauge({ name: 'tabby_ipam_gc_candidates', help: 'Allocations without an owner in the last GC pass (waiting for their grace or released)', registers });
    this.ipamGcReclaimed = new prom.Counter({ name: 'tabby_ipam_gc_reclaimed_total', help: 'Allocations and affinities the IPAM GC released', labelNames: ['reason'], registers });
    this.ipamGcPasses = new prom.Counter({ name: 'tabby_ipam_gc_passes_total', help: 'IPAM GC passes started', registers });
    this.ipamGcErrors = new prom.Counter({ name: 'tabby_ipam_gc_errors_total', help: 'IPAM GC passes aborted, by stage (ipam, owners, release)', labelNames: ['stage'], registers });
    if (defaults) prom.collectDefaultMetrics({ register: registry, prefix: 'tabby_node_' });
  }
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(m: NodeMetrics, host: string, port: number): Promise<MetricsServer> {
  const registry = m.registry;
  if (!registry) throw new Error('startMetricsServer: these NodeMetrics were created disabled');
  const srv: Server = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve());
  });
  return { port: (srv.address() as AddressInfo).port, close: () => new Promise((r) => srv.close(() => r())) };
}
