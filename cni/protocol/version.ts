/**
 * CNI spec versions and result shapes. A plugin supports 0.3.0–1.1.0; results are converted to
 * the version the runtime asked for (0.3.x/0.4.0 IP entries carry `version: "4"|"6"`).
 */
import { CniCode, CniError } from './errors.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const LATEST_VERSION = '1.1.0';

function parts(v: string): number[] {
  return v.split('.').map((x) => Number(x));
}

/** a < b as semantic versions. */
export function versionLess(a: string, b: string): boolean {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < 3; i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

/** Throws CNI error 1 when the requested version is not one we speak. */
export function checkVersion(v: unknown): string {
  if (typeof v !== 'string' || v === '') {
    throw new CniError(CniCode.InvalidNetworkConfig, 'network config has no cniVersion');
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(v)) {
    throw new CniError(CniCode.IncompatibleVersion, `incompatible CNI version ${v}`, `supported versions: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return v;
}

/** The VERSION command's answer. */
export function versionInfo(cniVersion = LATEST_VERSION): { cniVersion: string; supportedVersions: string[] } {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}

export interface IpConfig {
  /** CIDR form: `10.244.1.5/32`. */
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string; mtu?: number }>;
  ips?: IpConfig[];
  routes?: Array<{ dst: string; gw?: string }>;
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

/** Render a result for the requested version. */
export function resultForVersion(r: Omit<CniResult, 'cniVersion'>, cniVersion: string): Record<string, unknown> {
  const legacy = versionLess(cniVersion, '1.0.0');
  const ips = (r.ips ?? []).map((ip) => (legacy ? { version: ip.address.includes(':') ? '6' : '4', ...ip } : { ...ip }));
  const out: Record<string, unknown> = { cniVersion };
  if (r.interfaces) out.interfaces = r.interfaces;
  out.ips = ips;
  if (r.routes) out.routes = r.routes;
  out.dns = r.dns ?? {};
  return out;
}
