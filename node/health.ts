/**
 * Liveness/readiness as calico-node: components report into an aggregator; `/liveness` and
 * `/readiness` on healthHost:healthPort answer 200 or 503 with a JSON body saying which component
 * is not ready and why.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ComponentReport {
  live: boolean;
  ready: boolean;
  detail?: string;
}

export class HealthAggregator {
  private readonly reports = new Map<string, ComponentReport>();

  /** Register a component (not ready until it reports). */
  register(name: string): void {
    if (!this.reports.has(name)) this.reports.set(name, { live: true, ready: false, detail: 'starting' });
  }

  report(name: string, r: ComponentReport): void {
    this.reports.set(name, r);
  }

  summary(): { live: boolean; ready: boolean; components: Record<string, ComponentReport> } {
    const components = Object.fromEntries(this.reports);
    const all = [...this.reports.values()];
    return { live: all.every((r) => r.live), ready: all.length > 0 && all.every((r) => r.ready), components };
  }
}

export type BgpPeerState = { address: string; state: string };

/**
 * Calico's BIRD readiness rule: no peers ⇒ ready; within `graceMs` of start every peer must be
 * Established; afterwards one Established peer is enough.
 */
export function bgpReadiness(peers: readonly BgpPeerState[], sinceStartMs: number, graceMs = 30_000): ComponentReport {
  if (peers.length === 0) return { live: true, ready: true, detail: 'no BGP peers configured' };
  const down = peers.filter((p) => p.state !== 'Established').map((p) => p.address);
  const up = peers.length - down.length;
  if (down.length === 0) return { live: true, ready: true, detail: `${up} BGP peers Established` };
  if (sinceStartMs >= graceMs && up > 0) return { live: true, ready: true, detail: `${up}/${peers.length} BGP peers Established` };
  return { live: true, ready: false, detail: `BGP not established with ${down.join(',')}` };
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(agg: HealthAggregator, host: string, port: number): Promise<HealthServer> {
  const srv: Server = createServer((req, res) => {
    const s = agg.summary();
    const path = (req.url ?? '/').split('?')[0];
    let ok: boolean;
    if (path === '/liveness') ok = s.live;
    else if (path === '/readiness') ok = s.ready;
    else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: use /liveness or /readiness\n');
      return;
    }
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ ok, ...s })}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve());
  });
  return {
    port: (srv.address() as AddressInfo).port,
    close: () => new Promise((r) => srv.close(() => r())),
  };
}
