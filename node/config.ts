/**
 * The calico-node environment, parsed purely (no I/O except the hostname fallback, which is injected).
 * Every bad value throws NodeConfigError naming the variable and what it accepts.
 */
import { hostname as osHostname } from 'node:os';
import { canonicalCidr, parseCidr, parseIP } from '../api/net.js';
import type { EncapMode } from '../api/types.js';
import { DEFAULT_BLOCK_SIZE_V4, DEFAULT_BLOCK_SIZE_V6 } from '../api/defaults.js';
import { parseSelector } from '../api/selector.js';
import { configFromEnv, type DatastoreConfig } from '../datastore/config.js';
import { TabbyError } from '../lib/errors.js';

export class NodeConfigError extends TabbyError {
  readonly variable: string;
  constructor(variable: string, message: string, hint: string) {
    super('NodeConfig', `${variable}: ${message}`, { hint });
    this.variable = variable;
  }
}

export type IPSetting = { mode: 'autodetect' } | { mode: 'none' } | { mode: 'static'; address: string; prefix?: number };

export type AutodetectMethod =
  | { kind: 'first-found' }
  | { kind: 'can-reach'; destination: string }
  | { kind: 'interface'; patterns: string[] }
  | { kind: 'skip-interface'; patterns: string[] }
  | { kind: 'cidr'; cidrs: string[] };

export interface DefaultPoolConfig {
  cidr: string;
  blockSize: number;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  nodeSelector: string;
}

export interface FelixOverrides {
  ipipMTU?: number;
  vxlanMTU?: number;
  /** FELIX_VXLANMTUV6 (default host MTU − 70). */
  vxlanMTUV6?: number;
  routeRefreshIntervalSec: number;
  healthEnabled: boolean;
  healthHost: string;
  healthPort: number;
  prometheusMetricsEnabled: boolean;
  prometheusMetricsPort: number;
  logSeverityScreen: string;
  /** FELIX_IPV6SUPPORT (default: true when IP6 is not none): v6 sysctls on the node and workloads. */
  ipv6Support: boolean;
}

export interface IpamGcConfig {
  enabled: boolean;
  /** An ownerless allocation is released only after two observations this far apart (default 60 s). */
  graceMs: number;
  /** Time between the leader's passes (default 30 s). */
  intervalMs: number;
  /** Leader lease duration (default 15 s); the lease is renewed every third of it. */
  leaseDurationMs: number;
}

export const IPAM_GC_DEFAULTS: IpamGcConfig = { enabled: true, graceMs: 60_000, intervalMs: 30_000, leaseDurationMs: 15_000 };

export interface NodeConfig {
  nodeName: string;
  datastore: DatastoreConfig;
  ip: IPSetting;
  autodetect: AutodetectMethod;
  /** IP6 (default none, as calico-node). */
  ip6: IPSetting;
  /** IP6_AUTODETECTION_METHOD. */
  autodetect6: AutodetectMethod;
  /** AS for this node; undefined = inherit BGPConfiguration. */
  asNumber?: number;
  /** CALICO_ROUTER_ID: an IPv4 address or `hash`. */
  routerId?: string;
  /** undefined when NO_DEFAULT_POOLS=true. */
  defaultPool?: DefaultPoolConfig;
  /** Only when CALICO_IPV6POOL_CIDR is set (and NO_DEFAULT_POOLS is not). */
  defaultPool6?: DefaultPoolConfig;
  felix: FelixOverrides;
  runDir: string;
  libDir: string;
  waitForDatastore: boolean;
  /** CALICO_NETWORKING_BACKEND: `bird` (BGP, default), `vxlan` or `none` (no BGP speaker). */
  networkingBackend: 'bird' | 'vxlan' | 'none';
  /** IPAM garbage collection (TABBY_IPAM_GC*); parseNodeConfig always sets it, undefined = off. */
  ipamGc?: IpamGcConfig;
  /** TABBY_CNI_SERVER (`on` default, `off`): serve the `tabby` CNI shim on `<runDir>/cni.sock`. */
  cniServer: boolean;
  /**
   * TABBY_GR_DEFERRAL_TIME (seconds or a Go duration, default 30): after a restart with kept kernel
   * routes, the longest wait for the peers' End-of-RIB before advertising (node/graceful.ts);
   * 0 = no restarting role (no R bit, advertise at once).
   */
  grDeferralSec?: number;
}

export const DEFAULT_POOL_CIDR = '192.168.0.0/16';
export const DEFAULT_RUN_DIR = '/var/run/tabby';
export const DEFAULT_LIB_DIR = '/var/lib/tabby';
export const DEFAULT_HEALTH_PORT = 9099;
export const DEFAULT_METRICS_PORT = 9091;
/** TABBY_GR_DEFERRAL_TIME default (node/graceful.ts). */
export const DEFAULT_GR_DEFERRAL_SEC = 30;

function val(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const v = env[key];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

export function parseBool(env: NodeJS.ProcessEnv, key: string, dflt: boolean): boolean {
  const v = val(env, key);
  if (v === undefined) return dflt;
  const l = v.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(l)) return true;
  if (['false', '0', 'no', 'off'].includes(l)) return false;
  throw new NodeConfigError(key, `not a boolean: ${JSON.stringify(v)}`, 'use true or false');
}

function parseInt10(env: NodeJS.ProcessEnv, key: string, min: number, max: number): number | undefined {
  const v = val(env, key);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new NodeConfigError(key, `not an integer in ${min}..${max}: ${JSON.stringify(v)}`, `set ${key} to an integer between ${min} and ${max}`);
  }
  return Number(v);
}

/** `90`, `90s`, `1m30s`, `500ms` → seconds. */
export function parseDurationSec(key: string, v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of v.matchAll(re)) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n / 1000 : m[2] === 's' ? n : m[2] === 'm' ? n * 60 : n * 3600;
    consumed += m[0].length;
  }
  if (consumed !== v.length || consumed === 0) {
    throw new NodeConfigError(key, `not a duration: ${JSON.stringify(v)}`, 'use seconds (90) or a Go duration (90s, 1m30s)');
  }
  return total;
}

function parseEncap(env: NodeJS.ProcessEnv, key: string, dflt: EncapMode): EncapMode {
  const v = val(env, key);
  if (v === undefined) return dflt;
  const l = v.toLowerCase();
  if (l === 'always') return 'Always';
  if (l === 'never' || l === 'off' || l === 'false') return 'Never';
  if (l === 'crosssubnet' || l === 'cross-subnet') return 'CrossSubnet';
  throw new NodeConfigError(key, `unknown encapsulation mode ${JSON.stringify(v)}`, 'use Always, CrossSubnet or Never');
}

function parseRegexList(key: string, list: string): string[] {
  const pats = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (pats.length === 0) throw new NodeConfigError(key, 'empty interface pattern list', 'give at least one regular expression');
  for (const p of pats) {
    try {
      new RegExp(p);
    } catch (err) {
      throw new NodeConfigError(key, `bad regular expression ${JSON.stringify(p)}: ${(err as Error).message}`, 'fix the interface regex');
    }
  }
  return pats;
}

export function parseAutodetectMethod(raw: string | undefined, key = 'IP_AUTODETECTION_METHOD'): AutodetectMethod {
  const v = raw?.trim() ?? '';
  if (v === '' || v === 'first-found') return { kind: 'first-found' };
  const eq = v.indexOf('=');
  const name = eq < 0 ? v : v.slice(0, eq);
  const arg = eq < 0 ? '' : v.slice(eq + 1).trim();
  switch (name) {
    case 'can-reach': {
      if (arg === '') throw new NodeConfigError(key, 'can-reach needs a destination', 'use can-reach=<IP or hostname>');
      return { kind: 'can-reach', destination: arg };
    }
    case 'interface':
      return { kind: 'interface', patterns: parseRegexList(key, arg) };
    case 'skip-interface':
      return { kind: 'skip-interface', patterns: parseRegexList(key, arg) };
    case 'cidr': {
      const cidrs = arg.split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (cidrs.length === 0) throw new NodeConfigError(key, 'cidr needs at least one CIDR', 'use cidr=10.0.0.0/8[,…]');
      return {
        kind: 'cidr',
        cidrs: cidrs.map((c) => {
          const p = parseCidr(c);
          if (!p) throw new NodeConfigError(key, `bad CIDR ${JSON.stringify(c)}`, 'use cidr=10.0.0.0/8[,…]');
          return canonicalCidr(p);
        }),
      };
    }
    default:
      throw new NodeConfigError(
        key,
        `unknown method ${JSON.stringify(v)}`,
        'use first-found, can-reach=<dest>, interface=<regex>, skip-interface=<regex> or cidr=<cidr,…>',
      );
  }
}

export function parseIPSetting(raw: string | undefined, key = 'IP', family: 4 | 6 = 4, dflt: 'autodetect' | 'none' = 'autodetect'): IPSetting {
  const v = raw?.trim() ?? '';
  if (v === '') return { mode: dflt };
  if (v === 'autodetect') return { mode: 'autodetect' };
  if (v === 'none') return { mode: 'none' };
  const kind = family === 4 ? 'ipv4' : 'ipv6';
  const example = family === 4 ? '10.0.0.5 or 10.0.0.5/24' : 'fd00::5 or fd00::5/64';
  const bad = (): NodeConfigError => new NodeConfigError(key, `not an IPv${family} address or CIDR: ${JSON.stringify(v)}`, `use autodetect, none, ${example}`);
  if (v.includes('/')) {
    const c = parseCidr(v);
    if (!c || c.family !== family) throw bad();
    return { mode: 'static', address: c.addr.toString(), prefix: c.prefix };
  }
  const ip = parseIP(v);
  if (!ip || ip.kind() !== kind) throw bad();
  return { mode: 'static', address: ip.toString() };
}

/** AS numbers: plain (1..4294967295) or asdot (`1.10`). */
export function parseASNumber(raw: string, key = 'AS'): number {
  const v = raw.trim();
  let n: number;
  const dot = /^(\d+)\.(\d+)$/.exec(v);
  if (dot) {
    const hi = Number(dot[1]);
    const lo = Number(dot[2]);
    if (hi > 65535 || lo > 65535) throw new NodeConfigError(key, `bad asdot AS number ${JSON.stringify(v)}`, 'each half must be ≤ 65535');
    n = hi * 65536 + lo;
  } else if (/^\d+$/.test(v)) {
    n = Number(v);
  } else {
    throw new NodeConfigError(key, `not an AS number: ${JSON.stringify(v)}`, 'use an integer 1..4294967295 or asdot x.y');
  }
  if (n < 1 || n > 4294967295) throw new NodeConfigError(key, `AS number out of range: ${v}`, 'use 1..4294967295');
  return n;
}

function parseSelectorVar(env: NodeJS.ProcessEnv, key: string): string {
  const sel = val(env, key) ?? 'all()';
  try {
    parseSelector(sel);
  } catch (err) {
    throw new NodeConfigError(key, `bad selector: ${(err as Error).message}`, 'use a Calico selector such as all() or zone == "a"');
  }
  return sel;
}

function poolBlockSize(env: NodeJS.ProcessEnv, key: string, min: number, max: number, dflt: number, poolPrefix: number): number {
  const blockSize = parseInt10(env, key, min, max) ?? dflt;
  if (blockSize < poolPrefix) {
    throw new NodeConfigError(key, `block size /${blockSize} is larger than the pool /${poolPrefix}`, 'use a block size ≥ the pool prefix length');
  }
  return blockSize;
}

function parseDefaultPool(env: NodeJS.ProcessEnv): DefaultPoolConfig | undefined {
  if (parseBool(env, 'NO_DEFAULT_POOLS', false)) return undefined;
  const rawCidr = val(env, 'CALICO_IPV4POOL_CIDR') ?? DEFAULT_POOL_CIDR;
  const c = parseCidr(rawCidr);
  if (!c || c.family !== 4) throw new NodeConfigError('CALICO_IPV4POOL_CIDR', `not an IPv4 CIDR: ${JSON.stringify(rawCidr)}`, 'use e.g. 192.168.0.0/16');
  const blockSize = poolBlockSize(env, 'CALICO_IPV4POOL_BLOCK_SIZE', 20, 32, DEFAULT_BLOCK_SIZE_V4, c.prefix);
  const ipipMode = parseEncap(env, 'CALICO_IPV4POOL_IPIP', 'Never');
  const vxlanMode = parseEncap(env, 'CALICO_IPV4POOL_VXLAN', 'Never');
  if (ipipMode !== 'Never' && vxlanMode !== 'Never') {
    throw new NodeConfigError('CALICO_IPV4POOL_VXLAN', 'IPIP and VXLAN cannot both be enabled on the default pool', 'set CALICO_IPV4POOL_IPIP=Never or CALICO_IPV4POOL_VXLAN=Never');
  }
  return {
    cidr: canonicalCidr(c),
    blockSize,
    ipipMode,
    vxlanMode,
    natOutgoing: parseBool(env, 'CALICO_IPV4POOL_NAT_OUTGOING', true),
    nodeSelector: parseSelectorVar(env, 'CALICO_IPV4POOL_NODE_SELECTOR'),
  };
}

/**
 * The default IPv6 pool: created only when CALICO_IPV6POOL_CIDR is set (tabby never invents a ULA
 * prefix). NAT outgoing defaults to false as Calico; CALICO_IPV6POOL_VXLAN (vxlan-v6.calico) as the
 * IPv4 variable; IPIP does not exist for IPv6.
 */
function parseDefaultPool6(env: NodeJS.ProcessEnv): DefaultPoolConfig | undefined {
  if (parseBool(env, 'NO_DEFAULT_POOLS', false)) return undefined;
  const rawCidr = val(env, 'CALICO_IPV6POOL_CIDR');
  if (rawCidr === undefined) return undefined;
  const c = parseCidr(rawCidr);
  if (!c || c.family !== 6) throw new NodeConfigError('CALICO_IPV6POOL_CIDR', `not an IPv6 CIDR: ${JSON.stringify(rawCidr)}`, 'use e.g. fd00:10:244::/48');
  const blockSize = poolBlockSize(env, 'CALICO_IPV6POOL_BLOCK_SIZE', 116, 128, DEFAULT_BLOCK_SIZE_V6, c.prefix);
  const vxlanMode = parseEncap(env, 'CALICO_IPV6POOL_VXLAN', 'Never');
  return {
    cidr: canonicalCidr(c),
    blockSize,
    ipipMode: 'Never',
    vxlanMode,
    natOutgoing: parseBool(env, 'CALICO_IPV6POOL_NAT_OUTGOING', false),
    nodeSelector: parseSelectorVar(env, 'CALICO_IPV6POOL_NODE_SELECTOR'),
  };
}

const SEVERITIES = ['trace', 'debug', 'info', 'warning', 'warn', 'error', 'fatal', 'none'];

function parseFelix(env: NodeJS.ProcessEnv, ip6: IPSetting): FelixOverrides {
  const rr = val(env, 'FELIX_ROUTEREFRESHINTERVAL');
  const sev = (val(env, 'FELIX_LOGSEVERITYSCREEN') ?? 'info').toLowerCase();
  if (!SEVERITIES.includes(sev)) throw new NodeConfigError('FELIX_LOGSEVERITYSCREEN', `unknown severity ${JSON.stringify(sev)}`, 'use Debug, Info, Warning, Error or Fatal');
  const host = val(env, 'FELIX_HEALTHHOST') ?? '127.0.0.1';
  const out: FelixOverrides = {
    routeRefreshIntervalSec: rr === undefined ? 90 : parseDurationSec('FELIX_ROUTEREFRESHINTERVAL', rr),
    healthEnabled: parseBool(env, 'FELIX_HEALTHENABLED', true),
    healthHost: host === 'localhost' ? '127.0.0.1' : host,
    healthPort: parseInt10(env, 'FELIX_HEALTHPORT', 1, 65535) ?? DEFAULT_HEALTH_PORT,
    prometheusMetricsEnabled: parseBool(env, 'FELIX_PROMETHEUSMETRICSENABLED', false),
    prometheusMetricsPort: parseInt10(env, 'FELIX_PROMETHEUSMETRICSPORT', 1, 65535) ?? DEFAULT_METRICS_PORT,
    logSeverityScreen: sev === 'warning' ? 'warn' : sev === 'none' ? 'silent' : sev,
    ipv6Support: parseBool(env, 'FELIX_IPV6SUPPORT', ip6.mode !== 'none'),
  };
  const ipip = parseInt10(env, 'FELIX_IPINIPMTU', 0, 65535);
  const vx = parseInt10(env, 'FELIX_VXLANMTU', 0, 65535);
  if (ipip !== undefined && ipip !== 0) out.ipipMTU = ipip;
  if (vx !== undefined && vx !== 0) out.vxlanMTU = vx;
  const vx6 = parseInt10(env, 'FELIX_VXLANMTUV6', 0, 65535);
  if (vx6 !== undefined && vx6 !== 0) out.vxlanMTUV6 = vx6;
  return out;
}

/**
 * The datastore settings; etcd through its JSON gateway (node:http) unless TABBY_ETCD_TRANSPORT=grpc:
 * the gRPC client (etcd3 + protobufjs) was the agent's largest memory and start-up CPU cost
 * (bench/results/etcdwatch.md).
 */
function wrapDatastore(env: NodeJS.ProcessEnv): DatastoreConfig {
  try {
    const cfg = configFromEnv(env);
    if (cfg.type === 'etcdv3') cfg.etcdTransport ??= 'http';
    return cfg;
  } catch (err) {
    if (err instanceof TabbyError) {
      const m = /^(DATASTORE_TYPE|ETCD_[A-Z_]+|TABBY_ETCD_TRANSPORT|KUBECONFIG)/.exec(err.message);
      throw new NodeConfigError(m?.[1] ?? 'DATASTORE_TYPE', err.message, err.hint ?? 'check the datastore settings');
    }
    throw err;
  }
}

function parseBackend(v: string | undefined): NodeConfig['networkingBackend'] {
  if (v === undefined || v === 'bird') return 'bird';
  if (v === 'vxlan' || v === 'none') return v;
  throw new NodeConfigError('CALICO_NETWORKING_BACKEND', `unknown backend ${JSON.stringify(v)}`, 'use bird, vxlan or none');
}

export interface ParseOptions {
  /** Fallback for NODENAME (default os.hostname()). */
  hostname?: () => string;
}

function durationMs(env: NodeJS.ProcessEnv, key: string, dflt: number, minMs: number): number {
  const v = val(env, key);
  if (v === undefined) return dflt;
  const ms = Math.round(parseDurationSec(key, v) * 1000);
  if (ms < minMs) throw new NodeConfigError(key, `too short: ${JSON.stringify(v)}`, `use at least ${minMs} ms`);
  return ms;
}

/** TABBY_IPAM_GC=on|off, TABBY_IPAM_GC_GRACE, TABBY_IPAM_GC_INTERVAL, TABBY_IPAM_GC_LEASE (durations). */
export function parseIpamGc(env: NodeJS.ProcessEnv): IpamGcConfig {
  const d = IPAM_GC_DEFAULTS;
  return {
    enabled: parseBool(env, 'TABBY_IPAM_GC', d.enabled),
    graceMs: durationMs(env, 'TABBY_IPAM_GC_GRACE', d.graceMs, 0),
    intervalMs: durationMs(env, 'TABBY_IPAM_GC_INTERVAL', d.intervalMs, 10),
    leaseDurationMs: durationMs(env, 'TABBY_IPAM_GC_LEASE', d.leaseDurationMs, 30),
  };
}

function parseCniServer(v: string | undefined): boolean {
  if (v === undefined || v === 'on') return true;
  if (v === 'off') return false;
  throw new NodeConfigError('TABBY_CNI_SERVER', `must be "on" or "off", not ${JSON.stringify(v)}`, 'off makes every CNI call run the Node plugin');
}

export function parseNodeConfig(env: NodeJS.ProcessEnv, opts: ParseOptions = {}): NodeConfig {
  const nodeName = val(env, 'NODENAME') ?? val(env, 'HOSTNAME') ?? (opts.hostname ?? osHostname)();
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(nodeName) || nodeName.length > 253) {
    throw new NodeConfigError('NODENAME', `not a valid node name: ${JSON.stringify(nodeName)}`, 'use a lower-case DNS name (a-z, 0-9, "-", ".")');
  }
  const ip6 = parseIPSetting(env.IP6, 'IP6', 6, 'none');
  const cfg: NodeConfig = {
    nodeName,
    datastore: wrapDatastore(env),
    ip: parseIPSetting(env.IP),
    autodetect: parseAutodetectMethod(env.IP_AUTODETECTION_METHOD),
    ip6,
    autodetect6: parseAutodetectMethod(env.IP6_AUTODETECTION_METHOD, 'IP6_AUTODETECTION_METHOD'),
    felix: parseFelix(env, ip6),
    runDir: val(env, 'TABBY_RUN_DIR') ?? DEFAULT_RUN_DIR,
    libDir: val(env, 'TABBY_LIB_DIR') ?? DEFAULT_LIB_DIR,
    waitForDatastore: parseBool(env, 'WAIT_FOR_DATASTORE', true),
    networkingBackend: parseBackend(val(env, 'CALICO_NETWORKING_BACKEND')),
    cniServer: parseCniServer(val(env, 'TABBY_CNI_SERVER')),
  };
  const as = val(env, 'AS');
  if (as !== undefined) cfg.asNumber = parseASNumber(as);
  const rid = val(env, 'CALICO_ROUTER_ID');
  if (rid !== undefined) {
    const ip = parseIP(rid);
    if (rid !== 'hash' && (!ip || ip.kind() !== 'ipv4')) {
      throw new NodeConfigError('CALICO_ROUTER_ID', `not an IPv4 address or "hash": ${JSON.stringify(rid)}`, 'use an IPv4 address or hash');
    }
    cfg.routerId = rid;
  }
  const pool = parseDefaultPool(env);
  if (pool) cfg.defaultPool = pool;
  const pool6 = parseDefaultPool6(env);
  if (pool6) cfg.defaultPool6 = pool6;
  cfg.ipamGc = parseIpamGc(env);
  const grd = val(env, 'TABBY_GR_DEFERRAL_TIME');
  cfg.grDeferralSec = grd === undefined ? DEFAULT_GR_DEFERRAL_SEC : Math.min(3600, parseDurationSec('TABBY_GR_DEFERRAL_TIME', grd));
  return cfg;
}
