/**
 * The tabby-ipam view of a CNI network config (Calico field names): which node, which datastore,
 * which families and pools, where to log and lock. Invalid values are CNI error 7.
 */
import { hostname } from 'node:os';
import { CniCode, CniError } from '../protocol/errors.js';
import type { NetConf } from '../protocol/run.js';

export interface IpamPluginConfig {
  networkName: string;
  nodename: string;
  datastoreType: 'etcdv3' | 'kubernetes';
  etcdEndpoints: string[];
  kubeconfig: string | undefined;
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
  const k8s = obj(conf.kubernetes, 'kubernetes');
  const rc = obj(conf.runtimeConfig, 'runtimeConfig');
  const datastoreType = str(conf.datastore_type, 'datastore_type', 'etcdv3');
  if (datastoreType !== 'etcdv3' && datastoreType !== 'kubernetes') {
    throw new CniError(CniCode.InvalidNetworkConfig, `unknown datastore_type ${JSON.stringify(datastoreType)}`, 'use etcdv3 or kubernetes');
  }
  const etcdEndpoints = str(conf.etcd_endpoints, 'etcd_endpoints', env.ETCD_ENDPOINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (datastoreType === 'etcdv3' && etcdEndpoints.length === 0) {
    throw new CniError(CniCode.InvalidNetworkConfig, 'datastore_type etcdv3 needs etcd_endpoints');
  }
  const cfg: IpamPluginConfig = {
    networkName: conf.name,
    nodename: str(conf.nodename, 'nodename', env.NODENAME ?? hostname()),
    datastoreType,
    etcdEndpoints,
    kubeconfig: str(k8s.kubeconfig, 'kubernetes.kubeconfig', env.KUBECONFIG ?? '') || undefined,
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
