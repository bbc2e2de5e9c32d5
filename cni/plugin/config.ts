/**
 * The tabby plugin's view of a CNI network config (Calico field names). Pure: env and file reads are
 * passed in. Invalid values are CNI error 7.
 */
import { CniCode, CniError } from '../protocol/errors.js';
import type { NetConf } from '../protocol/run.js';

export const DEFAULT_LIB_DIR = '/var/lib/tabby';
export const DEFAULT_LOG_FILE = '/var/log/tabby/cni.log';
export const DEFAULT_MTU = 1500;
export const DEFAULT_IPAM = 'tabby-ipam';

export interface PluginConfig {
  cniVersion: string;
  name: string;
  /** 0 = not set in the config: read `<libDir>/mtu`, else DEFAULT_MTU. */
  mtu: number;
  libDir: string;
  logFile: string;
  logLevel: string;
  ipamType: string;
  nodename: string;
  /** A datastore is configured (datastore_type, etcd_endpoints or kubernetes.kubeconfig set). */
  datastoreConfigured: boolean;
  /** Allow IP forwarding inside the container (container_settings.allow_ip_forwarding). */
  allowIpForwarding: boolean;
  prevResult: Record<string, unknown> | undefined;
  /** cni.dev/valid-attachments for GC. */
  validAttachments: Array<{ containerID: string; ifname: string }>;
}

function obj(v: unknown, what: string): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new CniError(CniCode.InvalidNetworkConfig, `${what} must be an object`);
  return v as Record<string, unknown>;
}

function str(v: unknown, what: string, dflt: string): string {
  if (v === undefined || v === null || v === '') return dflt;
  if (typeof v !== 'string') throw new CniError(CniCode.InvalidNetworkConfig, `${what} must be a string`);
  return v;
}

/** MTU as Calico accepts it: a number or a numeric string; 0 = auto. */
export function parseMtu(v: unknown, what = 'mtu'): number {
  if (v === undefined || v === null || v === '') return 0;
  const n = typeof v === 'string' ? Number(v.trim()) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535 || (n > 0 && n < 68)) {
    throw new CniError(CniCode.InvalidNetworkConfig, `${what} must be an integer between 68 and 65535 (or 0 for the MTU file)`, `got ${JSON.stringify(v)}`);
  }
  return n;
}

export function pluginConfig(conf: NetConf, env: NodeJS.ProcessEnv, hostname: string): PluginConfig {
  const ipam = obj(conf.ipam, 'ipam') ?? {};
  const k8s = obj(conf.kubernetes, 'kubernetes');
  const cs = obj(conf.container_settings, 'container_settings') ?? {};
  const attachments = conf['cni.dev/valid-attachments'] ?? conf['cni.dev/attachments'];
  const valid: PluginConfig['validAttachments'] = [];
  if (attachments !== undefined) {
    if (!Array.isArray(attachments)) throw new CniError(CniCode.InvalidNetworkConfig, 'cni.dev/valid-attachments must be a list');
    for (const a of attachments as unknown[]) {
      const o = obj(a, 'cni.dev/valid-attachments entry') ?? {};
      if (typeof o.containerID !== 'string' || typeof o.ifname !== 'string') {
        throw new CniError(CniCode.InvalidNetworkConfig, 'cni.dev/valid-attachments entries need containerID and ifname strings');
      }
      valid.push({ containerID: o.containerID, ifname: o.ifname });
    }
  }
  return {
    cniVersion: conf.cniVersion,
    name: conf.name,
    mtu: parseMtu(conf.mtu),
    libDir: str(conf.lib_dir, 'lib_dir', env.TABBY_LIB_DIR || DEFAULT_LIB_DIR),
    logFile: str(conf.log_file_path, 'log_file_path', DEFAULT_LOG_FILE),
    logLevel: str(conf.log_level, 'log_level', 'info').toLowerCase(),
    ipamType: str(ipam.type, 'ipam.type', DEFAULT_IPAM),
    nodename: str(conf.nodename ?? k8s?.node_name, 'nodename', env.NODENAME || hostname),
    datastoreConfigured: Boolean(conf.datastore_type || conf.etcd_endpoints || k8s?.kubeconfig),
    allowIpForwarding: cs.allow_ip_forwarding === true || cs.allow_ip_forwarding === 'true',
    prevResult: obj(conf.prevResult, 'prevResult'),
    validAttachments: valid,
  };
}

/** Pod MTU: config `mtu`, else the number in the MTU file the agent writes, else 1500. */
export function resolveMtu(configured: number, mtuFileText: string | undefined): number {
  if (configured > 0) return configured;
  if (mtuFileText !== undefined) {
    const n = Number(mtuFileText.trim());
    if (Number.isInteger(n) && n >= 68 && n <= 65535) return n;
  }
  return DEFAULT_MTU;
}

/** CNI_IFNAME as the kernel accepts it (IFNAMSIZ 16 incl. NUL, no '/', no whitespace, not "." or ".."). */
export function checkIfname(name: string): void {
  if (name.length > 15) {
    throw new CniError(CniCode.InvalidEnv, `CNI_IFNAME ${JSON.stringify(name)} is longer than 15 characters`, 'interface names are limited to 15 bytes by the kernel');
  }
  if (name === '' || name === '.' || name === '..' || /[/\s:]/.test(name)) {
    throw new CniError(CniCode.InvalidEnv, `CNI_IFNAME ${JSON.stringify(name)} is not a valid interface name`);
  }
}
