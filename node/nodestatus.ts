/**
 * CalicoNodeStatus: when a CalicoNodeStatus resource names this node (`spec.node`), the agent
 * writes its `status` every `spec.updatePeriodSeconds` (default 10; 0 = stop updating) with the
 * requested `spec.classes` (Agent, BGP, Routes), field shapes as Calico's
 * (api/pkg/apis/projectcalico/v3/nodestatus.go, reference calico.md §1.9). Writes are
 * compare-and-swap on the freshly read object, so the spec (and anyone else's change) is kept.
 *
 * `buildNodeStatus` is pure; `NodeStatusReporter` is the I/O edge (watch + timers + CAS writes).
 */
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import type { BGPPeerStatus, BGPPeerType, BGPSessionState, CalicoNodeStatus, CalicoNodeStatusStatus, NodeStatusClass, RouteStatus } from '../api/types.js';
import { CALICO_NODE_STATUS_DEFAULTS } from '../api/defaults.js';
import type { Datastore, Watcher } from '../datastore/types.js';
import { ConflictError, NotFoundError } from '../datastore/types.js';
import type { PeerKind } from './bgp-config.js';

export interface StatusPeer {
  address: string;
  type: PeerKind;
  /** BGP FSM state (Idle … Established). */
  state: string;
  /** ISO time of the last state change. */
  since: string;
}

export interface StatusRoute {
  prefix: string;
  /** `local` (originated here) or the peer id the best path came from. */
  from: string;
  nextHop?: string;
  /** Originated prefixes that are in the kernel as blackholes (this node's blocks). */
  blackholed?: boolean;
}

export interface NodeStatusInputs {
  /** BGP runs on this node (false: agent.birdV4 NotReady, no peers). */
  bgpRunning: boolean;
  routerId?: string;
  version: string;
  bootTime: Date;
  lastReconfiguration?: Date;
  peers: StatusPeer[];
  routes: StatusRoute[];
  /** Interface learned routes leave by (the node's parent interface). */
  interface?: string;
}

const STATES: readonly BGPSessionState[] = ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established', 'Close'];

/** BIRD's time format in Calico's status: `2006-01-02 15:04:05` (UTC here). */
export function birdTime(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

function peerType(t: PeerKind): BGPPeerType {
  return t === 'node-to-node mesh' ? 'NodeMesh' : t === 'global' ? 'GlobalPeer' : 'NodePeer';
}

function sessionState(s: string): BGPSessionState {
  return (STATES as readonly string[]).includes(s) ? (s as BGPSessionState) : 'Idle';
}

/** The `status` for these classes (classes not asked for are left out, as Calico). */
export function buildNodeStatus(classes: readonly NodeStatusClass[], inp: NodeStatusInputs, now: Date): CalicoNodeStatusStatus {
  const st: CalicoNodeStatusStatus = { lastUpdated: now.toISOString().replace(/\.\d{3}Z$/, 'Z') };
  const v6 = (a: string): boolean => a.includes(':');
  if (classes.includes('Agent')) {
    const bird: NonNullable<NonNullable<CalicoNodeStatusStatus['agent']>['birdV4']> = { state: inp.bgpRunning ? 'Ready' : 'NotReady', version: inp.version };
    if (inp.bgpRunning) {
      if (inp.routerId) bird.routerID = inp.routerId;
      bird.lastBootTime = birdTime(inp.bootTime);
      bird.lastReconfigurationTime = birdTime(inp.lastReconfiguration ?? inp.bootTime);
    }
    st.agent = { birdV4: bird };
  }
  if (classes.includes('BGP')) {
    const toStatus = (p: StatusPeer): BGPPeerStatus => ({ peerIP: p.address, type: peerType(p.type), state: sessionState(p.state), since: birdTime(new Date(p.since)) });
    const peers4 = inp.peers.filter((p) => !v6(p.address));
    const peers6 = inp.peers.filter((p) => v6(p.address));
    const est = (ps: StatusPeer[]): number => ps.filter((p) => p.state === 'Established').length;
    st.bgp = {
      numberEstablishedV4: est(peers4),
      numberNotEstablishedV4: peers4.length - est(peers4),
      numberEstablishedV6: est(peers6),
      numberNotEstablishedV6: peers6.length - est(peers6),
      peersV4: peers4.map(toStatus),
      peersV6: peers6.map(toStatus),
    };
  }
  if (classes.includes('Routes')) {
    const byId = new Map(inp.peers.map((p) => [p.address, p]));
    const toStatus = (r: StatusRoute): RouteStatus => {
      if (r.from === 'local') {
        // Blocks are in the kernel (blackhole); service ranges are only in BGP.
        return { type: r.blackholed ? 'FIB' : 'RIB', destination: r.prefix, learnedFrom: { sourceType: 'Static' } };
      }
      const addr = r.from.startsWith('[') ? r.from.slice(1, r.from.indexOf(']')) : v6(r.from) ? r.from : (r.from.split(':')[0] ?? r.from);
      const peer = byId.get(addr);
      const out: RouteStatus = {
        type: 'FIB',
        destination: r.prefix,
        learnedFrom: { sourceType: peer?.type === 'node-to-node mesh' ? 'NodeMesh' : 'BGPPeer', peerIP: addr },
      };
      if (r.nextHop) out.gateway = r.nextHop;
      if (inp.interface) out.interface = inp.interface;
      return out;
    };
    st.routes = { routesV4: inp.routes.filter((r) => !v6(r.prefix)).map(toStatus), routesV6: inp.routes.filter((r) => v6(r.prefix)).map(toStatus) };
  }
  return st;
}

export interface NodeStatusReporterOptions {
  ds: Datastore;
  nodeName: string;
  collect: () => NodeStatusInputs;
  log: Logger;
  now?: () => Date;
}

interface Tracked {
  /** Signature of the spec fields the timer depends on. */
  sig: string;
  timer: NodeJS.Timeout | undefined;
}

/** Watches CalicoNodeStatus resources and keeps the status of those naming this node up to date. */
export class NodeStatusReporter {
  private watcher: Watcher | undefined;
  private readonly tracked = new Map<string, Tracked>();
  private stopped = false;
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly opts: NodeStatusReporterOptions) {}

  start(): void {
    this.watcher = this.opts.ds.watch<CalicoNodeStatus>('CalicoNodeStatus', {}, (ev) => {
      if (ev.type === 'ADDED' || ev.type === 'MODIFIED') this.track(ev.object);
      else if (ev.type === 'DELETED') this.untrack(ev.object.metadata.name);
      else if (ev.type === 'ERROR') this.opts.log.debug({ err: errorMessage(ev.error) }, 'CalicoNodeStatus watch trouble (retrying)');
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const name of [...this.tracked.keys()]) this.untrack(name);
    await this.watcher?.stop();
    await this.writes;
  }

  /** Names currently being reported (tests). */
  reporting(): string[] {
    return [...this.tracked.entries()].filter(([, t]) => t.timer !== undefined).map(([n]) => n);
  }

  /** Wait for queued writes (tests). */
  async settle(): Promise<void> {
    await this.writes;
  }

  private track(o: CalicoNodeStatus): void {
    const name = o.metadata.name;
    if (o.spec?.node !== this.opts.nodeName) {
      this.untrack(name);
      return;
    }
    const period = o.spec.updatePeriodSeconds ?? CALICO_NODE_STATUS_DEFAULTS.updatePeriodSeconds ?? 10;
    const sig = JSON.stringify([period, o.spec.classes]);
    const cur = this.tracked.get(name);
    if (cur?.sig === sig) return; // our own status write, or an unrelated change
    this.untrack(name);
    const t: Tracked = { sig, timer: undefined };
    this.tracked.set(name, t);
    if (period <= 0) return; // 0: stop updating
    this.enqueue(name);
    t.timer = setInterval(() => this.enqueue(name), period * 1000);
    t.timer.unref();
  }

  private untrack(name: string): void {
    const t = this.tracked.get(name);
    if (t?.timer) clearInterval(t.timer);
    this.tracked.delete(name);
  }

  private enqueue(name: string): void {
    this.writes = this.writes.then(() => this.write(name)).catch((err: unknown) => {
      this.opts.log.warn({ name, err: errorMessage(err) }, 'cannot update CalicoNodeStatus; retrying next period');
    });
  }

  /** CAS write of the status onto the latest object; a concurrent writer costs a retry, never the spec. */
  async write(name: string): Promise<void> {
    for (let attempt = 0; attempt < 5 && !this.stopped; attempt++) {
      let cur: CalicoNodeStatus;
      try {
        cur = await this.opts.ds.get<CalicoNodeStatus>('CalicoNodeStatus', name);
      } catch (err) {
        if (err instanceof NotFoundError) return this.untrack(name);
        throw err;
      }
      if (cur.spec?.node !== this.opts.nodeName) return;
      const status = buildNodeStatus(cur.spec.classes ?? [], this.opts.collect(), (this.opts.now ?? (() => new Date()))());
      try {
        await this.opts.ds.update<CalicoNodeStatus>({ ...cur, status });
        return;
      } catch (err) {
        if (err instanceof NotFoundError) return this.untrack(name);
        if (!(err instanceof ConflictError)) throw err;
      }
    }
  }
}
