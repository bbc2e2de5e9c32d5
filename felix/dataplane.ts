/**
 * Dataplane: felix's driver. `update(inputs)` recalculates the desired state (calc.ts, pure) and hands
 * it to the per-concern managers — route table, VXLAN device + neighbours, tunl0, sysctls, MTU file,
 * NAT outgoing. A manager's failure is recorded and retried on the next update/resync; it does not
 * stop the others. stop() keeps every kernel object in place (pods keep forwarding).
 *
 *   const dp = Dataplane.open({ netns: 'tfx-1', libDir: '/var/lib/tabby' });
 *   await dp.start();
 *   await dp.update(inputs);        // whenever the datastore/BGP view changes
 *   dp.status();                    // counters for health/metrics
 *   await dp.stop();
 */
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import { silentLogger } from '../lib/log.js';
import { AF, LinkNotFoundError, Netlink } from '../netlink/index.js';
import { calculate, hostPart, vtepMac, withoutIPv6 } from './calc.js';
import { IpipUnsupportedError, ensureIpipDevice } from './ipip.js';
import { DEFAULT_NAMES, type DataplaneNames, type DesiredInputs, type DesiredState } from './model.js';
import { computeMtus, hostMtu, writeMtuFile, MTU_IFACE_PATTERN, type Mtus } from './mtu.js';
import { NatManager, runNft, type NftRunner } from './nat.js';
import { RouteTable, type RouteTableStats } from './routes.js';
import { netlinkShim, type DataplaneNetlink, type Unsubscribe } from './shim.js';
import { nodeSysctls, procSysctlWriter, tunnelSysctls, workloadSysctls, type SysctlWriter } from './sysctl.js';
import { VXLAN_PORT, VXLAN_VNI, ensureVxlanDevice, syncVxlanNeighbours } from './vxlan.js';

export interface DataplaneConfig {
  names?: Partial<DataplaneNames>;
  /** Where the MTU file goes (`<libDir>/mtu`); unset = not written. */
  libDir?: string;
  /** Full resync period (routes, neighbours, NAT), ms. Default 90 s. */
  routeRefreshIntervalMs?: number;
  /** Drift debounce, ms. Default 20. */
  debounceMs?: number;
  /** Stale routes on a workload interface younger than this are kept (CNI race). Default 10 s. */
  routeCleanupGracePeriodMs?: number;
  ipipMTU?: number;
  vxlanMTU?: number;
  /** FELIX_VXLANMTUV6 (default host MTU − 70). */
  vxlanMTUV6?: number;
  vxlanVNI?: number;
  vxlanPort?: number;
  mtuIfacePattern?: RegExp;
  /** nftables table name (both families). Default `tabby-nat`. */
  natTable?: string;
  /** Manage NAT outgoing (default true). */
  natEnabled?: boolean;
  /**
   * FELIX_IPV6SUPPORT. true: IPv6 sysctls on the node and workload interfaces. false: IPv6 is left
   * alone entirely (no v6 routes, blackholes or ip6 NAT). Unset: v6 routes as the inputs say, no v6 sysctls.
   */
  ipv6?: boolean;
  log?: Logger;
}

export interface DataplaneDeps {
  nl: DataplaneNetlink;
  sysctl?: SysctlWriter;
  nft?: NftRunner;
}

export interface DataplaneStatus {
  routes: RouteTableStats;
  /** True after an update() whose every step succeeded and whose routes are all in the kernel. */
  applied: boolean;
  updates: number;
  mtus?: Mtus;
  warnings: string[];
  /** Last error per manager (cleared on success). */
  errors: Record<string, string>;
}

export class Dataplane {
  private readonly nl: DataplaneNetlink;
  private readonly names: DataplaneNames;
  private readonly log: Logger;
  private readonly routes: RouteTable;
  private readonly nat: NatManager | undefined;
  private readonly sysctl: SysctlWriter | undefined;
  private readonly cfg: DataplaneConfig;
  private readonly tuned = new Map<string, number>();
  private lastInputs: DesiredInputs | undefined;
  private lastState: DesiredState | undefined;
  private lastMtu: number | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private refresh: NodeJS.Timeout | undefined;
  private linkSub: Unsubscribe | undefined;
  private readonly st: DataplaneStatus;
  private owned: Netlink | undefined;
  private stepsOk = false;

  constructor(deps: DataplaneDeps, cfg: DataplaneConfig = {}) {
    this.nl = deps.nl;
    this.cfg = cfg;
    this.names = { ...DEFAULT_NAMES, ...cfg.names };
    this.log = cfg.log ?? silentLogger();
    this.sysctl = deps.sysctl;
    this.nat = cfg.natEnabled === false || !deps.nft ? undefined : new NatManager(deps.nft, cfg.natTable);
    this.routes = new RouteTable({
      nl: this.nl,
      names: this.names,
      log: this.log,
      debounceMs: cfg.debounceMs,
      refreshIntervalMs: cfg.routeRefreshIntervalMs,
      gracePeriodMs: cfg.routeCleanupGracePeriodMs,
    });
    this.st = { routes: this.routes.stats, applied: false, updates: 0, warnings: [], errors: {} };
  }

  /** Real kernel: a netlink handle in `netns` (or ours), /proc/sys writes and `nft` in the same netns. */
  static open(cfg: DataplaneConfig & { netns?: string } = {}): Dataplane {
    const nl = Netlink.open(cfg.netns === undefined ? {} : { netns: cfg.netns });
    const dp = new Dataplane({ nl: netlinkShim(nl), sysctl: procSysctlWriter(cfg.netns), nft: (s) => runNft(s, cfg.netns) }, cfg);
    dp.owned = nl;
    return dp;
  }

  async start(): Promise<void> {
    this.step('sysctl', () => this.sysctl?.(nodeSysctls(this.cfg.ipv6 === true)));
    if (this.nl.subscribe) {
      this.linkSub = this.nl.subscribe(['link'], (ev) => {
        if (ev.kind === 'link' && ev.action === 'new' && ev.link.name.startsWith(this.names.interfacePrefix)) this.tuneWorkload(ev.link.name, ev.link.index);
      }, (err) => this.log.warn({ err }, 'link event subscription failed'));
    }
    await this.routes.start();
    const ms = this.cfg.routeRefreshIntervalMs ?? 90_000;
    if (ms > 0) {
      this.refresh = setInterval(() => void this.resyncExtras(), ms);
      this.refresh.unref();
    }
  }

  /** Stops timers and event sockets; kernel state stays. */
  async stop(): Promise<void> {
    if (this.refresh) clearInterval(this.refresh);
    this.refresh = undefined;
    this.linkSub?.close();
    this.linkSub = undefined;
    await this.chain.catch(() => undefined);
    await this.routes.stop();
    this.owned?.close();
    this.owned = undefined;
  }

  /** Applies a new view of the world. Calls are serialised; resolves when the kernel matches. */
  update(inputs: DesiredInputs): Promise<DataplaneStatus> {
    const run = this.chain.then(() => this.applyInputs(inputs, false));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Live: `applied` also turns true once routes that waited for an interface are in. */
  status(): DataplaneStatus {
    const applied = this.stepsOk && this.routes.stats.waitingForInterface === 0 && !this.routes.lastApplyFailed();
    return { ...this.st, applied, routes: { ...this.routes.stats }, errors: { ...this.st.errors }, warnings: [...this.st.warnings] };
  }

  /** The last calculated desired state (for status/debugging). */
  desired(): DesiredState | undefined {
    return this.lastState;
  }

  // ---------------------------------------------------------------------------------------------

  private async resyncExtras(): Promise<void> {
    if (!this.lastInputs) return;
    const inputs = this.lastInputs;
    const run = this.chain.then(() => this.applyInputs(inputs, true));
    this.chain = run.catch(() => undefined);
    await run.catch(() => undefined);
  }

  private step(name: string, fn: () => void): boolean {
    try {
      fn();
      delete this.st.errors[name];
      return true;
    } catch (err) {
      this.st.errors[name] = errorMessage(err);
      this.log.warn({ err }, `dataplane ${name} failed`);
      return false;
    }
  }

  private async stepAsync(name: string, fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      delete this.st.errors[name];
      return true;
    } catch (err) {
      this.st.errors[name] = errorMessage(err);
      this.log.warn({ err }, `dataplane ${name} failed`);
      return false;
    }
  }

  private tuneWorkload(iface: string, index: number): void {
    if (!this.sysctl || this.tuned.get(iface) === index) return;
    if (this.step('sysctl', () => this.sysctl?.(workloadSysctls(iface, this.cfg.ipv6 === true)))) this.tuned.set(iface, index);
  }

  private async applyInputs(given: DesiredInputs, force: boolean): Promise<DataplaneStatus> {
    this.lastInputs = given;
    const inputs = this.cfg.ipv6 === false ? withoutIPv6(given) : given;
    this.st.updates++;
    const state = calculate(inputs, this.names);
    this.lastState = state;
    this.st.warnings = [...state.warnings];
    let ok = true;

    const links = await this.nl.linkList();
    const mtus = computeMtus({
      hostMtu: hostMtu(links, this.cfg.mtuIfacePattern ?? MTU_IFACE_PATTERN),
      ipip: state.needIpip,
      vxlan: state.needVxlan,
      vxlan6: state.needVxlan6,
      ...(this.cfg.vxlanMTUV6 !== undefined ? { vxlanMTUV6: this.cfg.vxlanMTUV6 } : {}),
      ...(this.cfg.ipipMTU !== undefined ? { ipipMTU: this.cfg.ipipMTU } : {}),
      ...(this.cfg.vxlanMTU !== undefined ? { vxlanMTU: this.cfg.vxlanMTU } : {}),
    });
    this.st.mtus = mtus;

    const present = new Map(links.map((l) => [l.name, l.index]));
    for (const l of links) this.routes.learnLink(l);
    ok = (await this.stepAsync('vxlan', () => this.syncVxlan(state, inputs, mtus.vxlan, present, 4))) && ok;
    ok = (await this.stepAsync('vxlan6', () => this.syncVxlan(state, inputs, mtus.vxlan6, present, 6))) && ok;
    ok = (await this.stepAsync('ipip', () => this.syncIpip(state, inputs, mtus.ipip))) && ok;

    for (const w of inputs.workloads) {
      const idx = present.get(w.iface);
      if (idx !== undefined) this.tuneWorkload(w.iface, idx);
    }
    for (const name of this.tuned.keys()) if (!present.has(name)) this.tuned.delete(name);

    const libDir = this.cfg.libDir;
    if (libDir !== undefined && (force || this.lastMtu !== mtus.pod)) {
      ok = (await this.stepAsync('mtu', () => writeMtuFile(libDir, mtus.pod))) && ok;
      if (!this.st.errors.mtu) this.lastMtu = mtus.pod;
    }
    const nat = this.nat;
    if (nat) ok = (await this.stepAsync('nat', () => nat.sync(inputs.pools, force))) && ok;

    this.routes.setRoutes(state.routes);
    if (!force) await this.routes.settled();
    this.stepsOk = ok;
    return this.status();
  }

  /** vxlan.calico (family 4) or vxlan-v6.calico (family 6): created, fixed or removed as the pools say. */
  private async syncVxlan(state: DesiredState, inputs: DesiredInputs, mtu: number, present: ReadonlyMap<string, number>, family: 4 | 6): Promise<void> {
    const v6 = family === 6;
    const name = v6 ? (this.names.vxlanDeviceV6 ?? DEFAULT_NAMES.vxlanDeviceV6!) : this.names.vxlanDevice;
    const self = inputs.self;
    const tunnel = v6 ? self.ipv6VXLANTunnelAddr : self.ipv4VXLANTunnelAddr;
    if (!(v6 ? state.needVxlan6 : state.needVxlan)) {
      if (!present.has(name)) return;
      try {
        await this.nl.linkDel(name);
        this.log.info({ device: name }, `no IPv${family} VXLAN pool: removed the VXLAN device`);
      } catch (err) {
        if (!(err instanceof LinkNotFoundError)) throw err;
      }
      return;
    }
    if (!tunnel) {
      this.st.warnings.push(`IPv${family} VXLAN pool present but node ${self.name} has no ${v6 ? 'ipv6' : 'ipv4'}VXLANTunnelAddr yet`);
      return;
    }
    const parent = v6 ? (inputs.parentIface6 ?? inputs.parentIface) : inputs.parentIface;
    const parentIndex = parent ? (await this.nl.linkByName(parent)).index : undefined;
    const local = v6 ? self.ipv6Address : self.ipv4Address;
    const link = await ensureVxlanDevice(this.nl, {
      name,
      tunnelIp: hostPart(tunnel),
      mac: (v6 ? self.vxlanTunnelMACAddrV6 : self.vxlanTunnelMACAddr) ?? vtepMac(self.name, v6),
      mtu,
      vni: this.cfg.vxlanVNI ?? VXLAN_VNI,
      port: this.cfg.vxlanPort ?? VXLAN_PORT,
      ...(local ? { localIp: hostPart(local) } : {}),
      ...(parentIndex !== undefined ? { parentIndex } : {}),
    });
    this.routes.learnLink(link);
    if (!v6) this.step('sysctl', () => this.sysctl?.(tunnelSysctls(name)));
    await syncVxlanNeighbours(this.nl, link.index, v6 ? state.vxlanPeers6 : state.vxlanPeers, v6 ? AF.INET6 : AF.INET);
  }

  private async syncIpip(state: DesiredState, inputs: DesiredInputs, mtu: number): Promise<void> {
    if (!state.needIpip) return;
    try {
      const link = await ensureIpipDevice(this.nl, {
        name: this.names.ipipDevice,
        mtu,
        ...(inputs.self.ipv4IPIPTunnelAddr ? { tunnelIp: hostPart(inputs.self.ipv4IPIPTunnelAddr) } : {}),
      });
      this.routes.learnLink(link);
    } catch (err) {
      if (err instanceof IpipUnsupportedError) this.st.warnings.push(`${err.message}: IPIP routes cannot be programmed`);
      throw err;
    }
  }
}
