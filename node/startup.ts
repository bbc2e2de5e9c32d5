/**
 * tabby-node startup (calico-node's `startup` phase): wait for the datastore, register/update this
 * Node, create the default IPPool when no pool exists, ensure ClusterInformation, write the node
 * name and MTU files. The datastore, the autodetector and the clock are injected.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../lib/log.js';
import { TabbyError, errorMessage } from '../lib/errors.js';
import type { ClusterInformation, IPPool, Node } from '../api/types.js';
import { AlreadyExistsError, ConflictError, NotFoundError, UnavailableError, type Datastore } from '../datastore/types.js';
import type { DefaultPoolConfig, IPSetting, NodeConfig } from './config.js';
import { summarize, type Detection } from './autodetect.js';
import type { Ipam } from '../ipam/ipam.js';
import { ensureTunnelAddresses } from './tunnel.js';

export class StartupError extends TabbyError {}

export interface WaitOptions {
  attempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const sleepReal = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Bounded retries with exponential back-off until the datastore answers a list. */
export async function waitForDatastore(ds: Datastore, log: Logger, opts: WaitOptions = {}): Promise<void> {
  const attempts = opts.attempts ?? 30;
  let delay = opts.initialDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 5000;
  const sleep = opts.sleep ?? sleepReal;
  for (let i = 1; ; i++) {
    try {
      await ds.list('ClusterInformation');
      if (i > 1) log.info({ attempt: i }, 'datastore is reachable');
      return;
    } catch (err) {
      if (i >= attempts) {
        throw new StartupError('DatastoreNotReady', `datastore (${ds.type}) still unreachable after ${attempts} attempts: ${errorMessage(err)}`, {
          hint: 'check ETCD_ENDPOINTS / KUBECONFIG and that the datastore is running',
          cause: err,
        });
      }
      log.warn({ attempt: i, of: attempts, retryInMs: delay, err: errorMessage(err) }, 'waiting for the datastore');
      await sleep(delay);
      delay = Math.min(max, delay * 2);
    }
  }
}

/** Read-modify-write with retries on CAS conflicts. */
async function casLoop<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if ((err instanceof ConflictError || err instanceof AlreadyExistsError) && i < 10) continue;
      throw err;
    }
  }
}

export interface RegisterInput {
  nodeName: string;
  /** `10.0.0.5/24`, or undefined for IP=none. */
  ipv4Cidr?: string;
  /** `fd00::5/64`, or undefined for IP6=none. */
  ipv6Cidr?: string;
  asNumber?: number;
}

/**
 * Create or update the Node: bgp.ipv4Address / bgp.ipv6Address (CIDR form) and asNumber set from this host; every
 * other field — routeReflectorClusterID, tunnel addresses, labels — is preserved.
 */
export async function registerNode(ds: Datastore, inp: RegisterInput): Promise<Node> {
  return casLoop('Node', async () => {
    let existing: Node | undefined;
    try {
      existing = await ds.get<Node>('Node', inp.nodeName);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    const node: Node = existing
      ? structuredClone(existing)
      : { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: inp.nodeName }, spec: {} };
    node.spec ??= {};
    const bgp = { ...(node.spec.bgp ?? {}) };
    if (inp.ipv4Cidr !== undefined) bgp.ipv4Address = inp.ipv4Cidr;
    else delete bgp.ipv4Address;
    if (inp.ipv6Cidr !== undefined) bgp.ipv6Address = inp.ipv6Cidr;
    else delete bgp.ipv6Address;
    if (inp.asNumber !== undefined) bgp.asNumber = inp.asNumber;
    else delete bgp.asNumber;
    node.spec.bgp = bgp;
    const addrs = [inp.ipv4Cidr, inp.ipv6Cidr].flatMap((c) => (c ? [{ address: c.slice(0, c.indexOf('/')), type: 'CalicoNodeIP' as const }] : []));
    const others = (node.spec.addresses ?? []).filter((a) => a.type !== 'CalicoNodeIP');
    node.spec.addresses = [...others, ...addrs];
    if (existing && JSON.stringify(existing.spec) === JSON.stringify(node.spec)) return existing;
    return existing ? ds.update(node) : ds.create(node);
  });
}

/**
 * Create the default pool of `cfg`'s family (`default-ipv4-ippool` / `default-ipv6-ippool`) unless a
 * pool of that family exists (in `existing` when the caller has just listed them). Returns the
 * created pool, or undefined.
 */
export async function ensureDefaultPool(ds: Datastore, cfg: DefaultPoolConfig, log: Logger, existing?: readonly IPPool[]): Promise<IPPool | undefined> {
  const v6 = cfg.cidr.includes(':');
  const fam = v6 ? 'IPv6' : 'IPv4';
  const pools = existing ?? (await ds.list<IPPool>('IPPool')).items;
  if (pools.some((p) => p.spec.cidr.includes(':') === v6)) {
    log.info({ pools: pools.map((p) => p.metadata.name) }, `${fam} pool exists; not creating the default ${fam} pool`);
    return undefined;
  }
  const pool: IPPool = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: v6 ? 'default-ipv6-ippool' : 'default-ipv4-ippool' },
    spec: {
      cidr: cfg.cidr,
      blockSize: cfg.blockSize,
      ...(v6 ? {} : { ipipMode: cfg.ipipMode }),
      vxlanMode: cfg.vxlanMode,
      natOutgoing: cfg.natOutgoing,
      nodeSelector: cfg.nodeSelector,
    },
  };
  try {
    const made = await ds.create(pool);
    log.info({ cidr: cfg.cidr, blockSize: cfg.blockSize, ipipMode: cfg.ipipMode, vxlanMode: cfg.vxlanMode }, `created the default ${fam} pool`);
    return made;
  } catch (err) {
    if (err instanceof AlreadyExistsError) return undefined; // another node won the race
    throw err;
  }
}

export async function ensureClusterInformation(ds: Datastore, version: string): Promise<ClusterInformation> {
  return casLoop('ClusterInformation', async () => {
    let ci: ClusterInformation | undefined;
    try {
      ci = await ds.get<ClusterInformation>('ClusterInformation', 'default');
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    if (!ci) {
      return ds.create<ClusterInformation>({
        apiVersion: 'projectcalico.org/v3',
        kind: 'ClusterInformation',
        metadata: { name: 'default' },
        spec: { clusterGUID: randomBytes(16).toString('hex'), clusterType: 'tabby,bgp', calicoVersion: version, datastoreReady: true },
      });
    }
    if (ci.spec?.datastoreReady === false) {
      // Calico: a datastore marked not-ready (e.g. during migration) must not be written to.
      throw new StartupError('DatastoreNotReady', 'ClusterInformation default has datastoreReady=false', {
        hint: 'finish the datastore migration (set datastoreReady=true) and restart tabby-node',
      });
    }
    const next = structuredClone(ci);
    next.spec = { ...(ci.spec ?? {}), calicoVersion: version, datastoreReady: true };
    next.spec.clusterGUID ??= randomBytes(16).toString('hex');
    if (JSON.stringify(next.spec) === JSON.stringify(ci.spec)) return ci;
    return ds.update(next);
  });
}

export async function writeFileAtomic(dir: string, name: string, content: string, mode = 0o644): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, path);
  return path;
}

/** Pod MTU: host MTU minus the overhead of the enabled encapsulation (FELIX_*MTU overrides win). */
export function podMtu(hostMtu: number, pools: readonly IPPool[], felix: NodeConfig['felix']): number {
  const on = (p: IPPool, mode: IPPool['spec']['ipipMode']): boolean => !p.spec.disabled && (mode ?? 'Never') !== 'Never';
  const ipip = pools.some((p) => !p.spec.cidr.includes(':') && on(p, p.spec.ipipMode));
  const vxlan = pools.some((p) => !p.spec.cidr.includes(':') && on(p, p.spec.vxlanMode));
  const vxlan6 = pools.some((p) => p.spec.cidr.includes(':') && on(p, p.spec.vxlanMode));
  const c: number[] = [];
  if (ipip) c.push(felix.ipipMTU ?? hostMtu - 20);
  if (vxlan) c.push(felix.vxlanMTU ?? hostMtu - 50);
  if (vxlan6) c.push(felix.vxlanMTUV6 ?? hostMtu - 70);
  return c.length ? Math.min(...c) : hostMtu;
}

export interface StartupDeps {
  ds: Datastore;
  log: Logger;
  /** Resolves the node IP; called only for IP=autodetect. */
  detect: () => Promise<Detection>;
  /** Resolves the node IPv6 address; called only for IP6=autodetect (absent: IP6=autodetect fails). */
  detect6?: () => Promise<Detection>;
  /**
   * The interface that holds a static IP / IP6 address (node/autodetect.ts locateAddress); omitted
   * = not looked up. Autodetected addresses bring their interface with them.
   */
  locate?: (address: string, family: 4 | 6) => Promise<string | undefined>;
  /** MTU of the detected interface (default 1500). */
  hostMtu?: (iface: string | undefined) => Promise<number>;
  version?: string;
  wait?: WaitOptions;
  /** Allocates tunnel addresses (handles `vxlan-tunnel-addr-<node>` / `ipip-tunnel-addr-<node>`); omitted = none. */
  ipam?: Ipam;
}

export interface StartupResult {
  node: Node;
  detection?: Detection;
  detection6?: Detection;
  /** The interface holding the node's IPv4 / IPv6 address (autodetected or located), for no-encap routes. */
  interface?: string;
  interface6?: string;
  /** How the IP was chosen, one line. */
  ipSource: string;
  /** How the IPv6 address was chosen, one line. */
  ipSource6: string;
  pool?: IPPool;
  pool6?: IPPool;
  mtu: number;
}

interface Resolved {
  cidr?: string;
  detection?: Detection;
  /** The interface holding the address. */
  iface?: string;
  source: string;
}

/** IP / IP6 → the address in CIDR form and how it was chosen. */
async function resolveAddress(setting: IPSetting, family: 4 | 6, detect: (() => Promise<Detection>) | undefined, log: Logger, locate?: StartupDeps['locate']): Promise<Resolved> {
  const v = family === 4 ? '' : '6';
  if (setting.mode === 'autodetect') {
    if (!detect) throw new StartupError('AutodetectUnavailable', `IP${v}=autodetect but no IPv${family} detector is wired`, { hint: `set IP${v}=<addr>/<len>` });
    const d = await detect();
    log.info({ ip: d.cidr, interface: d.interface, method: d.method, considered: d.explanation }, `autodetected the node IPv${family} address`);
    return { cidr: d.cidr, detection: d, iface: d.interface, source: `autodetected: ${summarize(d)}` };
  }
  if (setting.mode === 'static') {
    const cidr = `${setting.address}/${setting.prefix ?? (family === 4 ? 32 : 128)}`;
    const iface = locate ? await locate(setting.address, family) : undefined;
    if (locate && iface === undefined) log.warn({ ip: cidr }, `IP${v} ${setting.address} is on no interface of this host: IPv${family} no-encap routes get no device`);
    log.info({ ip: cidr, interface: iface }, `using the node IPv${family} address from IP${v}`);
    const r: Resolved = { cidr, source: `from the IP${v} environment variable (${cidr}${iface ? ` on ${iface}` : ''})` };
    if (iface) r.iface = iface;
    return r;
  }
  log.info(`IP${v}=none: not setting an IPv${family} address`);
  return { source: family === 4 ? 'IP=none: no IPv4 address, IPv4 BGP disabled on this node' : 'IP6=none: no IPv6 address' };
}

/** How many times the startup steps are redone after the datastore dropped out in the middle of them. */
export const STARTUP_ROUNDS = 5;

export async function runStartup(cfg: NodeConfig, deps: StartupDeps): Promise<StartupResult> {
  const { ds, log } = deps;
  if (cfg.waitForDatastore) await waitForDatastore(ds, log, deps.wait);
  const v4 = await resolveAddress(cfg.ip, 4, deps.detect, log, deps.locate);
  const v6 = await resolveAddress(cfg.ip6, 6, deps.detect6, log, deps.locate);
  const ipv4Cidr = v4.cidr;
  const detection = v4.detection;
  // The datastore steps are idempotent: when the datastore drops out between them (an overloaded
  // etcd timing a request out), wait for it again and redo them rather than exit.
  const steps = async (): Promise<{ registered: Node; pool: IPPool | undefined; pool6: IPPool | undefined; pools: IPPool[] }> => {
    const node = await registerNode(ds, {
      nodeName: cfg.nodeName,
      ...(ipv4Cidr ? { ipv4Cidr } : {}),
      ...(v6.cidr ? { ipv6Cidr: v6.cidr } : {}),
      ...(cfg.asNumber !== undefined ? { asNumber: cfg.asNumber } : {}),
    });
    const b = node.spec?.bgp;
    log.info({ node: cfg.nodeName, ipv4Address: b?.ipv4Address, ipv6Address: b?.ipv6Address, asNumber: b?.asNumber, rrClusterId: b?.routeReflectorClusterID }, 'registered the Node');
    await ensureClusterInformation(ds, deps.version ?? '0.1.0');
    // One list serves the default pools, the MTU and the tunnel addresses (each etcd/API request costs
    // every agent of a cluster start; bench/RESULTS.md, session 5).
    let pools = (await ds.list<IPPool>('IPPool')).items;
    const ensure = async (want: DefaultPoolConfig | undefined): Promise<IPPool | undefined> => {
      if (!want) return undefined;
      const v6 = want.cidr.includes(':');
      const made = await ensureDefaultPool(ds, want, log, pools);
      if (made) pools = [...pools, made];
      // Another node created it between our list and our create: read the pools it made.
      else if (!pools.some((p) => p.spec.cidr.includes(':') === v6)) pools = (await ds.list<IPPool>('IPPool')).items;
      return made;
    };
    const pool = await ensure(cfg.defaultPool);
    const pool6 = await ensure(cfg.defaultPool6);
    let registered = node;
    if (deps.ipam && (ipv4Cidr || v6.cidr)) registered = await ensureTunnelAddresses(ds, deps.ipam, cfg.nodeName, log, { node, pools });
    return { registered, pool, pool6, pools };
  };
  let done: Awaited<ReturnType<typeof steps>>;
  for (let round = 1; ; round++) {
    try {
      done = await steps();
      break;
    } catch (err) {
      if (!(err instanceof UnavailableError) || round >= STARTUP_ROUNDS) throw err;
      log.warn({ round, of: STARTUP_ROUNDS, err: errorMessage(err) }, 'datastore unreachable during startup; waiting for it, then redoing the startup steps');
      await waitForDatastore(ds, log, deps.wait);
    }
  }
  const { registered, pool, pool6, pools } = done;
  const hostMtu = deps.hostMtu ? await deps.hostMtu(v4.iface) : 1500;
  const mtu = podMtu(hostMtu, pools, cfg.felix);
  await writeFileAtomic(cfg.libDir, 'nodename', cfg.nodeName);
  await writeFileAtomic(cfg.libDir, 'mtu', `${mtu}\n`);
  log.info({ libDir: cfg.libDir, mtu }, 'wrote the node name and MTU files');
  const res: StartupResult = { node: registered, ipSource: v4.source, ipSource6: v6.source, mtu };
  if (detection) res.detection = detection;
  if (v6.detection) res.detection6 = v6.detection;
  if (v4.iface) res.interface = v4.iface;
  if (v6.iface) res.interface6 = v6.iface;
  if (pool) res.pool = pool;
  if (pool6) res.pool6 = pool6;
  return res;
}
