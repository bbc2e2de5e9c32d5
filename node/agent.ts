/**
 * The tabby-node agent: startup → datastore watches → BGP plan (BgpSpeaker) + dataplane (felix
 * Dataplane) → health, metrics and the status socket. Stop() closes sessions and servers but keeps
 * kernel routes (pods keep forwarding; the next start reconciles).
 */
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import type { Resource } from '../api/meta.js';
import type { BGPConfiguration, BGPFilter, BGPPeer, BlockAffinity, IPAMBlock, IPPool, Node, WorkloadEndpoint } from '../api/types.js';
import type { Datastore, Watcher } from '../datastore/types.js';
import type { NodeConfig } from './config.js';
import type { Detection } from './autodetect.js';
import { runStartup, type StartupDeps, type StartupResult } from './startup.js';
import { ensureTunnelAddresses } from './tunnel.js';
import { recomputeFor, type Recompute } from './relevance.js';
import { computeBgpPlan, type BgpPlan, type ComputedPeer, type PeerKind } from './bgp-config.js';
import { bgpReadiness, HealthAggregator, startHealthServer, type HealthServer } from './health.js';
import { NodeMetrics, startMetricsServer, type MetricsServer } from './metrics.js';
import { IpamGc, type GcOwnerSource } from './ipam-gc.js';
import { startStatusServer, type NodeStatusSnapshot, type PeerSnapshot, type StatusServer } from './status.js';
import { configAdvertisements, mergeOriginate, serviceHostRoutes } from './advertise.js';
import { ServiceWatcher } from './services.js';
import { applyPeerPasswords, SecretResolver, type FailedPeer, type SecretAccess, type ServiceSource } from './secrets.js';
import { NodeStatusReporter, type NodeStatusInputs } from './nodestatus.js';
import type { RestartState } from './graceful.js';

/** The BGP speaker surface the agent needs (bgp/speaker.ts BgpSpeaker satisfies it). */
export interface SpeakerLike {
  start(): Promise<void>;
  stop(message?: string): Promise<void>;
  setConfig(cfg: SpeakerConfigLike): Promise<void>;
  status(): {
    peers: Array<{ address: string; port: number; peerType: string; state: string; since: string; info: string; prefixes: { received: number } }>;
    /** Graceful restart, restarting role: advertisements (and our End-of-RIB) still held back. */
    deferringAdvertisements?: boolean;
  };
  routes(): Array<{ family: string; prefix: string; paths: Array<{ from: string; nextHop?: string; best: boolean }> }>;
  on(ev: 'peer-state', fn: () => void): unknown;
  on(ev: 'best-path', fn: (e: BestPathLike) => void): unknown;
}

/** What the agent reads from the speaker's 'best-path' event (bgp/speaker.ts BestPathEvent). */
export interface BestPathLike {
  prefix: string;
  /** Undefined when the prefix became unreachable. */
  best?: { source: { id: string }; attrs: { nextHop?: string } } | undefined;
}

export interface PeerConfigLike {
  address: string;
  port?: number;
  asNumber: number;
  localAsNumber?: number;
  password?: string;
  passive?: boolean;
  ttlSecurity?: number;
  sourceAddress?: string;
  routeReflectorClient?: boolean;
  gracefulRestart?: { restartTime: number };
  keepaliveTime?: number;
  nextHopMode?: 'self' | 'keep';
  allowLocalAs?: number;
  filters?: string[];
  description?: string;
}

export interface SpeakerConfigLike {
  routerId: string;
  asNumber: number;
  clusterId?: string;
  listen?: { address?: string; port: number };
  peers: PeerConfigLike[];
  originate?: string[];
  /** BGPConfiguration prefixAdvertisements with community names resolved (node/advertise.ts). */
  prefixAdvertisements?: Array<{ cidr: string; communities: string[] }>;
  /** The BGPFilter resources peers name (by name, applied in the peer's order). */
  filters?: Array<{ name: string; spec: BGPFilter['spec'] }>;
  /**
   * felix keeps the kernel routes when the agent stops or dies, so peers may keep forwarding (GR F
   * bit); `restarting` (R bit, End-of-RIB deferred at most `deferralTime` s) after a restart that
   * found those routes in the kernel (node/graceful.ts).
   */
  gracefulRestart?: { forwardingPreserved: boolean; restarting?: boolean; deferralTime?: number };
}

/** The dataplane surface (felix/dataplane.ts Dataplane satisfies it). */
export interface DataplaneLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  update(inputs: unknown): Promise<{ applied: boolean }>;
}

export interface AgentDeps {
  ds: Datastore;
  log: Logger;
  detect: () => Promise<Detection>;
  /** IPv6 autodetection (IP6=autodetect). */
  detect6?: () => Promise<Detection>;
  /** The interface holding a static IP/IP6 (node/autodetect.ts locateAddress). */
  locate?: StartupDeps['locate'];
  hostMtu?: StartupDeps['hostMtu'];
  /** Created once the BGP plan is enabled; omitted = BGP not run (tests). */
  speaker?: (cfg: SpeakerConfigLike) => SpeakerLike;
  /** Omitted = no dataplane programming (tests). */
  dataplane?: () => DataplaneLike;
  /** felix/resources.ts inputsFromResources, injected to keep the agent free of felix internals. */
  dataplaneInputs?: (view: DataplaneView) => unknown;
  /**
   * felix/resources.ts impliedNextHops: the next hop the datastore alone gives each remote block. A
   * learned best path that agrees with it changes nothing in the dataplane view and is not
   * recomputed. Omitted = every best-path change is recomputed.
   */
  impliedNextHops?: (view: Pick<DataplaneView, 'nodeName' | 'nodes' | 'blocks'>) => Map<string, string>;
  now?: () => number;
  version?: string;
  wait?: StartupDeps['wait'];
  ipam?: StartupDeps['ipam'];
  /**
   * Where BGP passwords (secretKeyRef) are read (node/secrets.ts). Omitted or without `source`:
   * peers that need a password are not started and say why in the status.
   */
  secrets?: SecretAccess;
  /** Services/Endpoints for per-service /32s (externalTrafficPolicy Local); omitted = CIDRs only. */
  services?: { source: ServiceSource; refreshMs?: number };
  /** Who owns allocations, for the IPAM GC (default: WorkloadEndpoints + Nodes; pods on Kubernetes). */
  ipamGcOwners?: GcOwnerSource;
  /** Called once, after the first BGP plan: whether the speaker was started (node/main.ts closes its early listeners if not). */
  onFirstPlan?: (speakerStarted: boolean) => void;
  /**
   * Whether this start is a graceful restart (node/graceful.ts kernelRestartState: felix's routes
   * still in the kernel). Asked once, before the dataplane starts; omitted = a first start.
   */
  restartState?: () => Promise<RestartState>;
  /** Starts the CNI server (node/cni-server.ts) after startup; omitted = none (tests, TABBY_CNI_SERVER=off). */
  cniServer?: () => Promise<{ close(): Promise<void> }>;
}

export interface DataplaneView {
  nodeName: string;
  parentIface?: string;
  parentIface6?: string;
  nodes: Node[];
  pools: IPPool[];
  blocks: IPAMBlock[];
  affinities: BlockAffinity[];
  workloadEndpoints: WorkloadEndpoint[];
  bgpRoutes: Array<{ cidr: string; nextHop: string }>;
}

const WATCHED = ['Node', 'BGPPeer', 'BGPConfiguration', 'BGPFilter', 'IPPool', 'IPAMBlock', 'BlockAffinity', 'WorkloadEndpoint'] as const;
type WatchedKind = (typeof WATCHED)[number];

export function toPeerConfig(p: ComputedPeer): PeerConfigLike {
  const out: PeerConfigLike = { address: p.address, asNumber: p.asNumber, description: p.type };
  if (p.port !== undefined) out.port = p.port;
  if (p.localAsNumber !== undefined) out.localAsNumber = p.localAsNumber;
  if (p.password !== undefined) out.password = p.password;
  if (p.passive) out.passive = true;
  if (p.ttlSecurity !== undefined) out.ttlSecurity = p.ttlSecurity;
  if (p.sourceAddress !== undefined) out.sourceAddress = p.sourceAddress;
  if (p.routeReflectorClient) out.routeReflectorClient = true;
  if (p.gracefulRestartTime !== undefined) out.gracefulRestart = { restartTime: p.gracefulRestartTime };
  if (p.keepaliveTime !== undefined) out.keepaliveTime = p.keepaliveTime;
  if (p.nextHopMode) out.nextHopMode = p.nextHopMode === 'Self' ? 'self' : 'keep';
  if (p.allowLocalAs !== undefined) out.allowLocalAs = p.allowLocalAs;
  if (p.filters) out.filters = p.filters;
  return out;
}

export class NodeAgent {
  readonly health = new HealthAggregator();
  readonly metrics: NodeMetrics;
  private readonly store = new Map<WatchedKind, Map<string, Resource>>();
  private readonly synced = new Set<WatchedKind>();
  private watchers: Watcher[] = [];
  private speaker: SpeakerLike | undefined;
  private dataplane: DataplaneLike | undefined;
  private servers: Array<HealthServer | MetricsServer | StatusServer | { close(): Promise<void> }> = [];
  private startup: StartupResult | undefined;
  private plan: BgpPlan | undefined;
  private startedAt = 0;
  /** The IPAM garbage collector (runs passes only while this agent holds the lease). */
  ipamGc: IpamGc | undefined;
  private pending: NodeJS.Timeout | undefined;
  /** What the next recompute must redo (see `schedule`). */
  private dirty = { plan: true, dataplane: true, rereadRoutes: true };
  /** Datastore events (those that could not touch this node: irrelevantEvents) and recomputes; logged when the agent stops. */
  readonly counts = { datastoreEvents: 0, irrelevantEvents: 0, plans: 0, dataplaneUpdates: 0 };
  /** Coalesced BGP readiness/metrics report after session state changes. */
  private pendingReport: NodeJS.Timeout | undefined;
  /** When the last BGP report ran (Date.now(); rate limit of scheduleBgpReport). */
  private lastReportAt = -Infinity;
  /**
   * Best paths learned from peers, prefix → next hop: read in full from speaker.routes() when the
   * speaker starts (and after a failed recompute), then updated by every best-path event of the speaker.
   */
  private bgpBest = new Map<string, string>();
  /** The next hop the datastore alone gives each remote block (felix/resources impliedNextHops). */
  private impliedHops = new Map<string, string>();
  /** JSON of the dataplane inputs last applied (with `applied: true`): an identical view is not re-sent. */
  private lastDataplaneSig = '';
  private firstPlanDone = false;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  healthPort: number | undefined;
  metricsPort: number | undefined;
  private secrets: SecretResolver | undefined;
  private services: ServiceWatcher | undefined;
  private failedPeers: FailedPeer[] = [];
  /** When each held-back peer (by name) was first held back, for its SINCE column. */
  private failedSince = new Map<string, string>();
  private nodeStatus: NodeStatusReporter | undefined;
  private lastReconfig: Date | undefined;
  private lastConfigSig = '';
  private adSignature = '';
  private restart: RestartState | undefined;
  /** Peers running without their optional password (peer name + reason), warned about once. */
  private optionalMissing = new Set<string>();

  constructor(
    private readonly cfg: NodeConfig,
    private readonly deps: AgentDeps,
  ) {
    this.metrics = new NodeMetrics(true, cfg.felix.prometheusMetricsEnabled);
    for (const k of WATCHED) this.store.set(k, new Map());
    for (const c of ['datastore', 'dataplane', 'bgp']) this.health.register(c);
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async start(): Promise<void> {
    const { log } = this.deps;
    this.startedAt = this.now();
    // Health first so probes see "starting" rather than connection refused.
    if (this.cfg.felix.healthEnabled) {
      const h = await startHealthServer(this.health, this.cfg.felix.healthHost, this.cfg.felix.healthPort);
      this.healthPort = h.port;
      this.servers.push(h);
      log.info({ host: this.cfg.felix.healthHost, port: h.port }, 'health endpoints /liveness and /readiness');
    }
    if (this.cfg.felix.prometheusMetricsEnabled) {
      const m = await startMetricsServer(this.metrics, this.cfg.felix.healthHost === '0.0.0.0' ? '0.0.0.0' : '127.0.0.1', this.cfg.felix.prometheusMetricsPort);
      this.metricsPort = m.port;
      this.servers.push(m);
    }
    const sdeps: StartupDeps = { ds: this.deps.ds, log, detect: this.deps.detect };
    if (this.deps.detect6) sdeps.detect6 = this.deps.detect6;
    if (this.deps.locate) sdeps.locate = this.deps.locate;
    if (this.deps.hostMtu) sdeps.hostMtu = this.deps.hostMtu;
    if (this.deps.version) sdeps.version = this.deps.version;
    if (this.deps.wait) sdeps.wait = this.deps.wait;
    if (this.deps.ipam) sdeps.ipam = this.deps.ipam;
    this.startup = await runStartup(this.cfg, sdeps);
    this.servers.push(await startStatusServer(this.cfg.runDir, () => this.snapshot()));
    const sec = this.deps.secrets;
    this.secrets = new SecretResolver({
      namespace: sec?.namespace ?? 'kube-system',
      ...(sec?.source ? { source: sec.source } : {}),
      ...(sec?.unavailableReason ? { unavailableReason: sec.unavailableReason } : {}),
      ...(sec?.refreshMs ? { refreshMs: sec.refreshMs } : {}),
      onChange: () => this.schedule(),
      log,
    });
    this.secrets.start();
    if (this.deps.services) {
      const so: ConstructorParameters<typeof ServiceWatcher>[0] = { source: this.deps.services.source, onChange: () => this.schedule(), log };
      if (this.deps.services.refreshMs) so.refreshMs = this.deps.services.refreshMs;
      this.services = new ServiceWatcher(so);
    }
    this.nodeStatus = new NodeStatusReporter({ ds: this.deps.ds, nodeName: this.cfg.nodeName, log, collect: () => this.nodeStatusInputs() });
    this.nodeStatus.start();
    if (this.cfg.ipamGc?.enabled && this.deps.ipam) {
      const gcDeps: ConstructorParameters<typeof IpamGc>[1] = { ds: this.deps.ds, ipam: this.deps.ipam, identity: this.cfg.nodeName, log, metrics: this.metrics };
      if (this.deps.ipamGcOwners) gcDeps.owners = this.deps.ipamGcOwners;
      if (this.deps.now) gcDeps.now = this.deps.now;
      this.ipamGc = new IpamGc(this.cfg.ipamGc, gcDeps);
      this.ipamGc.start();
    }
    if (this.deps.cniServer) this.servers.push(await this.deps.cniServer());
    if (this.deps.restartState) {
      this.restart = await this.deps.restartState();
      log.info({ restarting: this.restart.restarting, keptRoutes: this.restart.keptRoutes }, `graceful restart: ${this.restart.detail}`);
    }
    if (this.deps.dataplane) {
      this.dataplane = this.deps.dataplane();
      await this.dataplane.start();
    } else {
      this.health.report('dataplane', { live: true, ready: true, detail: 'dataplane programming disabled' });
    }
    for (const kind of WATCHED) {
      this.watchers.push(
        this.deps.ds.watch(kind, {}, (ev) => {
          const m = this.store.get(kind)!;
          // SYNCED: workload endpoints only feed the dataplane (the BGP plan exports blocks, not endpoints).
          let what: Recompute | undefined = kind === 'WorkloadEndpoint' ? 'dataplane' : 'plan';
          if (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED') {
            const k = key(ev.object);
            const prev = m.get(k);
            if (ev.type === 'DELETED') m.delete(k);
            else m.set(k, ev.object);
            // Another node's pod, allocation or affinity: the store is current, nothing to recompute.
            what = recomputeFor(this.cfg.nodeName, kind, prev, ev.type === 'DELETED' ? undefined : ev.object);
          } else if (ev.type === 'SYNCED') {
            this.synced.add(kind);
            this.reportDatastore();
          } else if (ev.type === 'ERROR') {
            log.warn({ kind, err: errorMessage(ev.error) }, 'datastore watch trouble (retrying)');
            return;
          }
          this.counts.datastoreEvents++;
          if (what) this.schedule(what);
          else this.counts.irrelevantEvents++;
        }),
      );
    }
  }

  private reportDatastore(): void {
    const missing = WATCHED.filter((k) => !this.synced.has(k));
    this.metrics.datastoreSynced.set(missing.length ? 0 : 1);
    this.health.report('datastore', missing.length ? { live: true, ready: false, detail: `waiting for ${missing.join(', ')}` } : { live: true, ready: true, detail: 'in sync' });
  }

  /**
   * Coalesce bursts of events into one recompute. `what` says which part is stale: `plan` (datastore,
   * secrets, services: BGP plan + speaker config + dataplane) or `dataplane` (workload endpoints, a
   * learned best path that changes the dataplane view).
   */
  schedule(what: 'plan' | 'dataplane' = 'plan'): void {
    if (what === 'plan') this.dirty.plan = true;
    this.dirty.dataplane = true;
    if (this.stopped || this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.running = this.running.then(() => this.recompute()).catch((err: unknown) => {
        // Redo everything on the next change: the failed part may have been any of them.
        this.dirty = { plan: true, dataplane: true, rereadRoutes: true };
        this.metrics.reconcileErrors.inc();
        this.deps.log.error({ err: errorMessage(err) }, 'reconcile failed; retrying on the next change');
      });
    }, COALESCE_MS);
  }

  /**
   * Session state changes come in bursts (99 peers × 5 transitions at mesh start, spread over many
   * seconds when 100 agents share a few cores): one report per burst, and at most one per
   * BGP_REPORT_MIN_INTERVAL_MS — each reads every peer's status and sets two metrics per peer.
   */
  private scheduleBgpReport(): void {
    if (this.stopped || this.pendingReport) return;
    const wait = Math.max(BGP_REPORT_DELAY_MS, this.lastReportAt + BGP_REPORT_MIN_INTERVAL_MS - Date.now());
    this.pendingReport = setTimeout(() => {
      this.pendingReport = undefined;
      this.reportBgp();
    }, wait);
  }

  private items<T extends Resource>(kind: WatchedKind): T[] {
    return [...this.store.get(kind)!.values()] as T[];
  }

  private async recompute(): Promise<void> {
    if (this.stopped || this.synced.size < WATCHED.length) return;
    const dirty = this.dirty;
    this.dirty = { plan: false, dataplane: false, rereadRoutes: false };
    if (dirty.plan || !this.plan) {
      this.counts.plans++;
      await this.recomputePlan();
    }
    if (dirty.dataplane) {
      this.counts.dataplaneUpdates++;
      await this.updateDataplane(dirty.rereadRoutes);
    }
  }

  /** BGP plan from the datastore view → speaker configuration (only when it changed). */
  private async recomputePlan(): Promise<void> {
    await this.maybeTunnelAddresses();
    const nodes = this.items<Node>('Node');
    const config = this.items<BGPConfiguration>('BGPConfiguration').find((c) => c.metadata.name === 'default');
    const plan = computeBgpPlan({
      nodeName: this.cfg.nodeName,
      nodes,
      peers: this.items<BGPPeer>('BGPPeer'),
      ...(config ? { config } : {}),
      affinities: this.items<BlockAffinity>('BlockAffinity'),
      blocks: this.items<IPAMBlock>('IPAMBlock'),
      pools: this.items<IPPool>('IPPool'),
      ...(this.cfg.routerId ? { routerId: this.cfg.routerId } : {}),
    });
    const secrets = this.secrets;
    const optional = new Set<string>();
    const warnOnce = ({ peer, reason }: FailedPeer): void => {
      const k = `${peer.name}\n${reason}`;
      optional.add(k);
      if (!this.optionalMissing.has(k)) this.deps.log.warn({ peer: peer.name, address: peer.address }, `BGP peer ${peer.name}: ${reason}`);
    };
    this.failedPeers = secrets ? applyPeerPasswords(plan, config, this.items<BGPPeer>('BGPPeer'), (ref) => secrets.lookup(ref), warnOnce) : [];
    // Warned once while it stays missing; a Secret that comes and goes again is warned about again.
    this.optionalMissing = optional;
    const since = new Date(this.now()).toISOString();
    this.failedSince = new Map(this.failedPeers.map(({ peer }) => [peer.name, this.failedSince.get(peer.name) ?? since]));
    const ads = configAdvertisements(config?.spec);
    const adSig = JSON.stringify(ads.problems);
    if (ads.problems.length && adSig !== this.adSignature) this.deps.log.warn({ problems: ads.problems }, 'BGPConfiguration: entries ignored');
    this.adSignature = adSig;
    this.services?.setActive(ads.services.length > 0);
    const hostRoutes = this.services ? serviceHostRoutes(this.cfg.nodeName, config?.spec, this.services.services, this.services.endpoints) : [];
    plan.exports = mergeOriginate(plan.exports, [...ads.services, ...hostRoutes]);
    this.plan = plan;
    this.metrics.bgpExported.set(plan.exports.length);
    if (plan.enabled && this.deps.speaker && this.cfg.networkingBackend === 'bird') {
      const sc: SpeakerConfigLike = {
        routerId: plan.routerId,
        asNumber: plan.asNumber,
        listen: { port: plan.listenPort },
        peers: plan.peers.map(toPeerConfig),
        originate: plan.exports,
        gracefulRestart: this.gracefulRestartConfig(),
        filters: this.items<BGPFilter>('BGPFilter').map((f) => ({ name: f.metadata.name, spec: f.spec })),
      };
      if (ads.communities.length) sc.prefixAdvertisements = ads.communities;
      if (plan.clusterId) sc.clusterId = plan.clusterId;
      const sig = JSON.stringify(sc);
      const changed = sig !== this.lastConfigSig;
      if (changed) {
        this.lastConfigSig = sig;
        this.lastReconfig = new Date(this.now());
      }
      if (!this.speaker) {
        this.speaker = this.deps.speaker(sc);
        // Session states only change readiness/metrics; routes only the dataplane.
        this.speaker.on('peer-state', () => this.scheduleBgpReport());
        this.speaker.on('best-path', (e) => this.onBestPath(e));
        // Everything learned before the subscription (none for a speaker that has not started).
        this.bgpBest = this.bgpRoutes();
        await this.speaker.start();
      } else if (changed) {
        // The same configuration again (an event that did not touch BGP) is not re-applied.
        await this.speaker.setConfig(sc);
      }
    }
    // The first plan reports at once (readiness leaves "starting"); later ones join the rate-limited reports.
    if (this.firstPlanDone) this.scheduleBgpReport();
    else this.reportBgp();
    if (!this.firstPlanDone) {
      this.firstPlanDone = true;
      this.deps.onFirstPlan?.(this.speaker !== undefined);
    }
  }

  /**
   * A best path changed. Most learned paths at mesh start are the other nodes' blocks with the
   * owner's address as next hop, which the datastore already gave felix: those change nothing in
   * the dataplane view and cost no recompute (one per peer at a 100-node mesh start).
   */
  private onBestPath(e: BestPathLike): void {
    const hop = e.best && e.best.source.id !== 'local' ? e.best.attrs.nextHop : undefined;
    const old = this.bgpBest.get(e.prefix);
    if (hop === old) return;
    if (hop === undefined) this.bgpBest.delete(e.prefix);
    else this.bgpBest.set(e.prefix, hop);
    const implied = this.impliedHops.get(e.prefix);
    const effective = (h: string | undefined): string | undefined => (h === implied ? undefined : h);
    if (effective(old) !== effective(hop)) this.schedule('dataplane');
  }

  /** The dataplane view → felix; an unchanged view is not re-sent once it was fully applied. */
  private async updateDataplane(rereadBgpRoutes: boolean): Promise<void> {
    if (!this.dataplane || !this.deps.dataplaneInputs) return;
    if (rereadBgpRoutes || !this.speaker) this.bgpBest = this.bgpRoutes();
    const nodes = this.items<Node>('Node');
    const blocks = this.items<IPAMBlock>('IPAMBlock');
    if (this.deps.impliedNextHops) this.impliedHops = this.deps.impliedNextHops({ nodeName: this.cfg.nodeName, nodes, blocks });
    const view: DataplaneView = {
      nodeName: this.cfg.nodeName,
      nodes,
      pools: this.items<IPPool>('IPPool'),
      blocks,
      affinities: this.items<BlockAffinity>('BlockAffinity'),
      workloadEndpoints: this.items<WorkloadEndpoint>('WorkloadEndpoint').filter((w) => w.spec.node === this.cfg.nodeName),
      bgpRoutes: [...this.bgpBest].map(([cidr, nextHop]) => ({ cidr, nextHop })),
    };
    // The interfaces holding the node's addresses (autodetected, or a static IP/IP6 located):
    // IPv6 no-encap routes leave by the IPv6 one even when IPv4 was autodetected elsewhere.
    if (this.startup?.interface) view.parentIface = this.startup.interface;
    if (this.startup?.interface6) view.parentIface6 = this.startup.interface6;
    const inputs = this.deps.dataplaneInputs(view);
    const sig = JSON.stringify(inputs);
    if (sig === this.lastDataplaneSig) return;
    const t0 = this.now();
    const st = await this.dataplane.update(inputs);
    this.metrics.routeApply.observe((this.now() - t0) / 1000);
    // Not fully applied (routes waiting for an interface…): the same view is sent again next time.
    this.lastDataplaneSig = st.applied ? sig : '';
    this.health.report('dataplane', st.applied ? { live: true, ready: true, detail: 'applied' } : { live: true, ready: false, detail: 'dataplane not fully applied yet' });
  }

  private gracefulRestartConfig(): NonNullable<SpeakerConfigLike['gracefulRestart']> {
    const deferral = this.cfg.grDeferralSec ?? 0;
    if (!this.restart?.restarting || deferral <= 0) return { forwardingPreserved: true };
    return { forwardingPreserved: true, restarting: true, deferralTime: deferral };
  }

  /** The restarting role's state for status: why, and whether advertisements are still held. */
  private gracefulRestartStatus(): string | undefined {
    const r = this.restart;
    if (!r) return undefined;
    if (!r.restarting) return r.detail;
    if ((this.cfg.grDeferralSec ?? 0) <= 0) return `${r.detail}; TABBY_GR_DEFERRAL_TIME=0: no restarting role`;
    if (!this.speaker) return `${r.detail}; BGP not started yet`;
    return this.speaker.status().deferringAdvertisements
      ? `${r.detail}; restarting (R bit): advertisements held until the peers' End-of-RIB (≤ ${this.cfg.grDeferralSec} s)`
      : `${r.detail}; restart done: advertisements and End-of-RIB sent`;
  }

  private poolSignature = '';

  /** Pools changed (e.g. VXLAN switched on): re-check this node's tunnel addresses. */
  private async maybeTunnelAddresses(): Promise<void> {
    const startup = this.startup;
    const bgp = startup?.node.spec?.bgp;
    if (!this.deps.ipam || !startup || !(bgp?.ipv4Address || bgp?.ipv6Address)) return;
    const sig = JSON.stringify(
      this.items<IPPool>('IPPool').map((p) => [p.metadata.name, p.spec.cidr, p.spec.vxlanMode, p.spec.ipipMode, p.spec.disabled, p.spec.nodeSelector]),
    );
    if (sig === this.poolSignature) return;
    const first = this.poolSignature === '';
    this.poolSignature = sig;
    if (first) return; // startup just did it
    startup.node = await ensureTunnelAddresses(this.deps.ds, this.deps.ipam, this.cfg.nodeName, this.deps.log);
  }

  /** All best paths learned from peers, read from the speaker (prefix → next hop). */
  private bgpRoutes(): Map<string, string> {
    const out = new Map<string, string>();
    if (!this.speaker) return out;
    for (const r of this.speaker.routes()) {
      const best = r.paths.find((p) => p.best);
      if (best?.nextHop && best.from !== 'local') out.set(r.prefix, best.nextHop);
    }
    return out;
  }

  private peerSnapshots(status = this.speaker?.status().peers ?? []): PeerSnapshot[] {
    const running = status.map((p) => {
      const s: PeerSnapshot = { address: p.address, type: asPeerKind(p.peerType), state: p.state, since: p.since, info: peerInfo(p.state, p.info) };
      if (p.port !== 179) s.port = p.port;
      return s;
    });
    // Peers held back (password Secret missing…): Idle, with the reason.
    const failed = this.failedPeers.map(({ peer, reason }) => {
      const since = this.failedSince.get(peer.name) ?? new Date(this.startedAt).toISOString();
      const s: PeerSnapshot = { address: peer.address, type: peer.type, state: 'Idle', since, info: peerInfo('Idle', reason) };
      if (peer.port !== undefined && peer.port !== 179) s.port = peer.port;
      return s;
    });
    return [...running, ...failed];
  }

  private nodeStatusInputs(): NodeStatusInputs {
    const blackholed = new Set(this.plan?.blackholes ?? []);
    const inp: NodeStatusInputs = {
      bgpRunning: this.speaker !== undefined && (this.plan?.enabled ?? false),
      version: this.deps.version ?? 'tabby',
      bootTime: new Date(this.startedAt),
      peers: this.peerSnapshots(),
      routes: (this.speaker?.routes() ?? []).flatMap((r) => {
        const best = r.paths.find((p) => p.best);
        if (!best) return [];
        const out: NodeStatusInputs['routes'][number] = { prefix: r.prefix, from: best.from };
        if (best.nextHop && best.from !== 'local') out.nextHop = best.nextHop;
        if (best.from === 'local' && blackholed.has(r.prefix)) out.blackholed = true;
        return [out];
      }),
    };
    if (this.plan?.routerId) inp.routerId = this.plan.routerId;
    if (this.lastReconfig) inp.lastReconfiguration = this.lastReconfig;
    if (this.startup?.interface) inp.interface = this.startup.interface;
    return inp;
  }

  private reportBgp(): void {
    if (this.pendingReport) clearTimeout(this.pendingReport);
    this.pendingReport = undefined;
    this.lastReportAt = Date.now();
    const status = this.speaker?.status().peers ?? [];
    const peers = this.peerSnapshots(status);
    for (const p of status) {
      this.metrics.bgpPeerState.set({ peer: p.address, type: p.peerType }, p.state === 'Established' ? 1 : 0);
      this.metrics.bgpPrefixes.set({ peer: p.address }, p.prefixes.received);
    }
    if (!this.plan?.enabled || !this.deps.speaker || this.cfg.networkingBackend !== 'bird') {
      this.health.report('bgp', { live: true, ready: true, detail: this.plan?.reason ?? 'BGP not run' });
      return;
    }
    this.health.report('bgp', bgpReadiness(peers, this.now() - this.startedAt));
  }

  snapshot(): NodeStatusSnapshot {
    const s = this.health.summary();
    const d = this.startup?.detection;
    const bgp: NodeStatusSnapshot['bgp'] = { enabled: this.plan?.enabled ?? false, peers: this.peerSnapshots(), exports: this.plan?.exports ?? [] };
    if (this.plan) {
      bgp.routerId = this.plan.routerId;
      bgp.asNumber = this.plan.asNumber;
      const gr = this.gracefulRestartStatus();
      if (gr) bgp.gracefulRestart = gr;
      if (this.plan.reason) bgp.reason = this.plan.reason;
      else if (this.cfg.networkingBackend !== 'bird') bgp.reason = `CALICO_NETWORKING_BACKEND=${this.cfg.networkingBackend}`;
      else if (!this.deps.speaker) bgp.reason = 'BGP speaker not wired';
      if (bgp.reason) bgp.enabled = false;
    }
    const ip: NodeStatusSnapshot['ip'] = { source: this.startup?.ipSource ?? 'starting', explanation: d?.explanation ?? [] };
    const cidr = this.startup?.node.spec?.bgp?.ipv4Address;
    if (cidr) ip.cidr = cidr;
    const ip6: NonNullable<NodeStatusSnapshot['ip6']> = { source: this.startup?.ipSource6 ?? 'starting', explanation: this.startup?.detection6?.explanation ?? [] };
    const cidr6 = this.startup?.node.spec?.bgp?.ipv6Address;
    if (cidr6) ip6.cidr = cidr6;
    return {
      nodeName: this.cfg.nodeName,
      pid: process.pid,
      startedAt: new Date(this.startedAt).toISOString(),
      ip,
      ip6,
      bgp,
      health: { live: s.live, ready: s.ready, components: Object.fromEntries(Object.entries(s.components).map(([k, v]) => [k, v.detail !== undefined ? { ready: v.ready, detail: v.detail } : { ready: v.ready }])) },
    };
  }

  /** Wait for pending recomputes and the pending BGP report (tests). */
  async settle(): Promise<void> {
    for (let i = 0; i < 500 && (this.pending || this.synced.size < WATCHED.length); i++) await new Promise((r) => setTimeout(r, 10));
    await this.running;
    if (this.pendingReport) this.reportBgp();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.pending) clearTimeout(this.pending);
    if (this.pendingReport) clearTimeout(this.pendingReport);
    this.pendingReport = undefined;
    await this.running.catch(() => undefined);
    await this.ipamGc?.stop();
    for (const w of this.watchers) await w.stop().catch(() => undefined);
    this.secrets?.stop();
    this.services?.stop();
    await this.nodeStatus?.stop().catch(() => undefined);
    await this.speaker?.stop('tabby-node shutting down').catch(() => undefined);
    // Kernel routes stay: the dataplane only stops its watchers.
    await this.dataplane?.stop().catch(() => undefined);
    for (const s of this.servers.reverse()) await s.close().catch(() => undefined);
  }
}

/** Delay before a BGP readiness/metrics report after a session state change (coalesces bursts). */
export const BGP_REPORT_DELAY_MS = 100;

/** Least time between two BGP readiness/metrics reports (readiness lags a session change by ≤ 1 s). */
export const BGP_REPORT_MIN_INTERVAL_MS = 1000;

/**
 * The coalescing window before a recompute: one claim's three writes land in one window. A window
 * that stretched with the recomputes' cost (4×, up to 200–250 ms) was tried and dropped: it took the
 * convergence p99 (bench/node-convergence.ts, 6 nodes) from ≈ 35 ms to 100–250 ms; its effect at
 * mesh start was not measured apart from the other changes.
 */
export const COALESCE_MS = 20;

function key(o: Resource): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function asPeerKind(s: string): PeerKind {
  return s === 'global' || s === 'node specific' ? s : 'node-to-node mesh';
}

/** calicoctl's INFO column: the state, then the reason when it adds something ("Active Connection refused"). */
export function peerInfo(state: string, info: string | undefined): string {
  if (!info || info.toLowerCase() === state.toLowerCase()) return state;
  return `${state} ${info}`;
}
