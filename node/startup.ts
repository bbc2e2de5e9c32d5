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
import { AlreadyExistsError, ConflictError, NotFoundError, type Datastore } from '../datastore/types.js';
import type { NodeConfig } from './config.js';
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
  asNumber?: number;
}

/**
 * Create or update the Node: bgp.ipv4Address (CIDR form) and asNumber set from this host; every
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
    if (inp.asNumber !== undefined) bgp.asNumber = inp.asNumber;
    else delete bgp.asNumber;
    node.spec.bgp = bgp;
    const addr = inp.ipv4Cidr ? inp.ipv4Cidr.slice(0, inp.ipv4Cidr.indexOf('/')) : undefined;
    const others = (node.spec.addresses ?? []).filter((a) => a.type !== 'CalicoNodeIP');
    node.spec.addresses = addr ? [...others, { address: addr, type: 'CalicoNodeIP' }] : others;
    if (existing && JSON.stringify(existing.spec) === JSON.stringify(node.spec)) return existing;
    return existing ? ds.update(node) : ds.create(node);
  });
}

/** Create the default IPv4 pool unless any IPv4 pool exists. Returns the created pool, or undefined. */
export async function ensureDefaultPool(ds: Datastore, cfg: NonNullable<NodeConfig['defaultPool']>, log: Logger): Promise<IPPool | undefined> {
  const pools = await ds.list<IPPool>('IPPool');
  if (pools.items.some((p) => !p.spec.cidr.includes(':'))) {
    log.info({ pools: pools.items.map((p) => p.metadata.name) }, 'IPv4 pool exists; not creating the default pool');
    return undefined;
  }
  const pool: IPPool = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'default-ipv4-ippool' },
    spec: {
      cidr: cfg.cidr,
      blockSize: cfg.blockSize,
      ipipMode: cfg.ipipMode,
      vxlanMode: cfg.vxlanMode,
      natOutgoing: cfg.natOutgoing,
      nodeSelector: cfg.nodeSelector,
    },
  };
  try {
    const made = await ds.create(pool);
    log.info({ cidr: cfg.cidr, blockSize: cfg.blockSize, ipipMode: cfg.ipipMode, vxlanMode: cfg.vxlanMode }, 'created the default IPv4 pool');
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
  const ipip = pools.some((p) => !p.spec.disabled && (p.spec.ipipMode ?? 'Never') !== 'Never');
  const vxlan = pools.some((p) => !p.spec.disabled && (p.spec.vxlanMode ?? 'Never') !== 'Never');
  const c: number[] = [];
  if (ipip) c.push(felix.ipipMTU ?? hostMtu - 20);
  if (vxlan) c.push(felix.vxlanMTU ?? hostMtu - 50);
  return c.length ? Math.min(...c) : hostMtu;
}

export interface StartupDeps {
  ds: Datastore;
  log: Logger;
  /** Resolves the node IP; called only for IP=autodetect. */
  detect: () => Promise<Detection>;
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
  /** How the IP was chosen, one line. */
  ipSource: string;
  pool?: IPPool;
  mtu: number;
}

export async function runStartup(cfg: NodeConfig, deps: StartupDeps): Promise<StartupResult> {
  const { ds, log } = deps;
  if (cfg.waitForDatastore) await waitForDatastore(ds, log, deps.wait);
  let ipv4Cidr: string | undefined;
  let detection: Detection | undefined;
  let ipSource: string;
  if (cfg.ip.mode === 'autodetect') {
    detection = await deps.detect();
    ipv4Cidr = detection.cidr;
    ipSource = `autodetected: ${summarize(detection)}`;
    log.info({ ip: detection.cidr, interface: detection.interface, method: detection.method, considered: detection.explanation }, 'autodetected the node IPv4 address');
  } else if (cfg.ip.mode === 'static') {
    ipv4Cidr = `${cfg.ip.address}/${cfg.ip.prefix ?? 32}`;
    ipSource = `from the IP environment variable (${ipv4Cidr})`;
    log.info({ ip: ipv4Cidr }, 'using the node IPv4 address from IP');
  } else {
    ipSource = 'IP=none: no IPv4 address, BGP disabled on this node';
    log.info('IP=none: not setting an IPv4 address');
  }
  const node = await registerNode(ds, { nodeName: cfg.nodeName, ...(ipv4Cidr ? { ipv4Cidr } : {}), ...(cfg.asNumber !== undefined ? { asNumber: cfg.asNumber } : {}) });
  log.info({ node: cfg.nodeName, ipv4Address: node.spec?.bgp?.ipv4Address, asNumber: node.spec?.bgp?.asNumber, rrClusterId: node.spec?.bgp?.routeReflectorClusterID }, 'registered the Node');
  await ensureClusterInformation(ds, deps.version ?? '0.1.0');
  const pool = cfg.defaultPool ? await ensureDefaultPool(ds, cfg.defaultPool, log) : undefined;
  const pools = (await ds.list<IPPool>('IPPool')).items;
  let registered = node;
  if (deps.ipam && ipv4Cidr) registered = await ensureTunnelAddresses(ds, deps.ipam, cfg.nodeName, log);
  const hostMtu = deps.hostMtu ? await deps.hostMtu(detection?.interface) : 1500;
  const mtu = podMtu(hostMtu, pools, cfg.felix);
  await writeFileAtomic(cfg.libDir, 'nodename', cfg.nodeName);
  await writeFileAtomic(cfg.libDir, 'mtu', `${mtu}\n`);
  log.info({ libDir: cfg.libDir, mtu }, 'wrote the node name and MTU files');
  const res: StartupResult = { node: registered, ipSource, mtu };
  if (detection) res.detection = detection;
  if (pool) res.pool = pool;
  return res;
}
