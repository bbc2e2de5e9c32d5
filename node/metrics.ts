/** Prometheus metrics (prom-client) on prometheusMetricsPort when enabled. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class NodeMetrics {
  readonly registry = new Registry();
  readonly bgpPeerState = new Gauge({ name: 'tabby_bgp_peer_established', help: '1 when the BGP session is Established', labelNames: ['peer', 'type'], registers: [this.registry] });
  readonly bgpPrefixes = new Gauge({ name: 'tabby_bgp_prefixes_received', help: 'Prefixes received from a BGP peer', labelNames: ['peer'], registers: [this.registry] });
  readonly bgpExported = new Gauge({ name: 'tabby_bgp_prefixes_exported', help: 'Prefixes this node originates', registers: [this.registry] });
  readonly routeApply = new Histogram({ name: 'tabby_route_apply_seconds', help: 'Dataplane apply latency', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] });
  readonly reconcileErrors = new Counter({ name: 'tabby_reconcile_errors_total', help: 'Dataplane reconcile errors', registers: [this.registry] });
  readonly ipamAllocations = new Gauge({ name: 'tabby_ipam_allocations', help: 'IPs allocated in blocks affine to this node', registers: [this.registry] });
  readonly datastoreSynced = new Gauge({ name: 'tabby_datastore_synced', help: '1 when every watch is in sync', registers: [this.registry] });
  readonly ipamGcLeader = new Gauge({ name: 'tabby_ipam_gc_leader', help: '1 while this agent holds the IPAM GC lease', registers: [this.registry] });
  readonly ipamGcCandidates = new Gauge({ name: 'tabby_ipam_gc_candidates', help: 'Allocations without an owner in the last GC pass (waiting for their grace or released)', registers: [this.registry] });
  readonly ipamGcReclaimed = new Counter({ name: 'tabby_ipam_gc_reclaimed_total', help: 'Allocations and affinities the IPAM GC released', labelNames: ['reason'], registers: [this.registry] });
  readonly ipamGcPasses = new Counter({ name: 'tabby_ipam_gc_passes_total', help: 'IPAM GC passes started', registers: [this.registry] });
  readonly ipamGcErrors = new Counter({ name: 'tabby_ipam_gc_errors_total', help: 'IPAM GC passes aborted, by stage (ipam, owners, release)', labelNames: ['stage'], registers: [this.registry] });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'tabby_node_' });
  }
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(m: NodeMetrics, host: string, port: number): Promise<MetricsServer> {
  const srv: Server = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    m.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': m.registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve());
  });
  return { port: (srv.address() as AddressInfo).port, close: () => new Promise((r) => srv.close(() => r())) };
}
