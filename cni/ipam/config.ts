/**
 * The tabby-ipam view of a CNI network config (Calico field names): which node, which datastore,
 * which families and pools, where to log and lock. Invalid values are CNI error 7.
 */
import { hostname } from 'node:os';
import { type DatastoreConfig, configFromCniNetConf } from '../../datastore/config.js';
import { CniCode, CniError } from '../protocol/errors.js';
import type { NetConf } from '../protocol/run.js';

export interface IpamPluginConfig {
  networkName: string;
  nodename: string;
  /** From `datastore_type`, `etcd_endpoints`, `kubernetes.kubeconfig` (env fills gaps). */
  datastore: DatastoreConfig;
  assignIpv4: boolean;
  assignIpv6: boolean;
  ipv4Pools: string[];
  ipv6Pools: string[];
  runDir: string;
  logFile: string;
  logLevel: string;
  /** runtimeConfig.ips: specific addresses requested by the runtime (`ips` capability). */
  runtimeIps: string[];
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new CniError(CniCode.InvalidNetworkConfig, `${what} must be an object`);
  return v as Record<string, unknown>;
}

function str(v: unknown, what: string, dflt: string): string {
  if (v === undefined || v === null || v === '') return dflt;
  if (typeof v !== 'string') throw new CniError(CniCode.InvalidNetworkConfig, `${what} must be a string`);
  return v;
}

/** Calico writes these as strings ("true"/"false"); accept booleans too. */
function bool(v: unknown, what: string, dflt: boolean): boolean {
  if (v === undefined || v === null || v === '') return dflt;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new CniError(CniCode.InvalidNetworkConfig, `${what} must be "true" or "false"`);
}

function strList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new CniError(CniCode.InvalidNetworkConfig, `${what} must be a list of strings`);
  }
  return v as string[];
}

export function pluginConfig(conf: NetConf, env: NodeJS.ProcessEnv = process.env): IpamPluginConfig {
  const ipam = obj(conf.ipam, 'ipam');
  const rc = obj(conf.runtimeConfig, 'runtimeConfig');
  const cfg: IpamPluginConfig = {
    networkName: conf.name,
    nodename: str(conf.nodename, 'nodename', env.NODENAME ?? hostname()),
    datastore: configFromCniNetConf(conf, env),
    assignIpv4: bool(ipam.assign_ipv4, 'ipam.assign_ipv4', true),
    assignIpv6: bool(ipam.assign_ipv6, 'ipam.assign_ipv6', false),
    ipv4Pools: strList(ipam.ipv4_pools, 'ipam.ipv4_pools'),
    ipv6Pools: strList(ipam.ipv6_pools, 'ipam.ipv6_pools'),
    runDir: str(ipam.run_dir, 'ipam.run_dir', '/var/run/tabby'),
    logFile: str(conf.log_file_path ?? ipam.log_file_path, 'log_file_path', '/var/log/tabby/cni.log'),
    logLevel: str(conf.log_level ?? ipam.log_level, 'log_level', 'info').toLowerCase(),
    runtimeIps: strList(rc.ips, 'runtimeConfig.ips'),
  };
  if (!cfg.assignIpv4 && !cfg.assignIpv6 && cfg.runtimeIps.length === 0) {
    throw new CniError(CniCode.InvalidNetworkConfig, 'ipam.assign_ipv4 and ipam.assign_ipv6 are both false: nothing to assign');
  }
  return cfg;
}
