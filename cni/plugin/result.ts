/**
 * CNI results: read an IPAM plugin's result (any spec version 0.3.0–1.1.0), build the tabby result
 * and render it for the version the runtime asked for. Pure.
 */
import { CniCode, CniError } from '../protocol/errors.js';
import { type CniResult, resultForVersion, versionLess } from '../protocol/version.js';

export interface PodIp {
  family: 4 | 6;
  /** Bare address, e.g. 10.244.1.5. */
  ip: string;
}

export interface IpamResult {
  ips: PodIp[];
  dns: CniResult['dns'];
}

/** The addresses an IPAM plugin returned (its own prefix lengths and gateways are ignored, as in Calico). */
export function parseIpamResult(raw: unknown, plugin: string): IpamResult {
  if (!raw || typeof raw !== 'object') throw new CniError(CniCode.DecodeFailure, `IPAM plugin ${plugin} returned no JSON object`);
  const r = raw as Record<string, unknown>;
  const list = r.ips;
  if (!Array.isArray(list) || list.length === 0) {
    throw new CniError(CniCode.PluginBase + 10, `IPAM plugin ${plugin} returned no IP addresses`);
  }
  const ips: PodIp[] = [];
  for (const e of list as unknown[]) {
    const addr = (e as { address?: unknown } | null)?.address;
    if (typeof addr !== 'string') throw new CniError(CniCode.DecodeFailure, `IPAM plugin ${plugin} returned an IP entry without address`);
    const ip = addr.split('/')[0] ?? '';
    ips.push({ family: ip.includes(':') ? 6 : 4, ip });
  }
  const dns = r.dns && typeof r.dns === 'object' ? (r.dns as CniResult['dns']) : undefined;
  return { ips, dns };
}

export const HOST_MAC = 'ee:ee:ee:ee:ee:ee';
export const GATEWAY_V4 = '169.254.1.1';
/** Link-local of a veth whose MAC is ee:ee:ee:ee:ee:ee (EUI-64). */
export const GATEWAY_V6 = 'fe80::ecee:eeff:feee:eeee';

export interface PodAttachment {
  hostIf: string;
  ifname: string;
  containerMac: string;
  netns: string;
  mtu: number;
  ips: PodIp[];
}

/** The version-free result tabby reports: host veth (no sandbox), pod interface, /32 and /128 addresses. */
export function buildResult(a: PodAttachment, dns: CniResult['dns']): Omit<CniResult, 'cniVersion'> {
  const routes: NonNullable<CniResult['routes']> = [];
  if (a.ips.some((x) => x.family === 4)) routes.push({ dst: '0.0.0.0/0', gw: GATEWAY_V4 });
  if (a.ips.some((x) => x.family === 6)) routes.push({ dst: '::/0', gw: GATEWAY_V6 });
  return {
    interfaces: [
      { name: a.hostIf, mac: HOST_MAC },
      { name: a.ifname, mac: a.containerMac, sandbox: a.netns, mtu: a.mtu },
    ],
    ips: a.ips.map((x) => ({
      address: `${x.ip}/${x.family === 4 ? 32 : 128}`,
      gateway: x.family === 4 ? GATEWAY_V4 : GATEWAY_V6,
      interface: 1,
    })),
    routes,
    dns: dns ?? {},
  };
}

/** Render for `cniVersion`; an interface's `mtu` exists from spec 1.1.0 on. */
export function renderResult(r: Omit<CniResult, 'cniVersion'>, cniVersion: string): Record<string, unknown> {
  const out = resultForVersion(r, cniVersion);
  if (versionLess(cniVersion, '1.1.0') && Array.isArray(out.interfaces)) {
    out.interfaces = (out.interfaces as Array<Record<string, unknown>>).map(({ mtu: _mtu, ...rest }) => rest);
  }
  return out;
}

/** Read back a stored/previous result of any version into the version-free form. */
export function normalizeResult(raw: Record<string, unknown>): Omit<CniResult, 'cniVersion'> {
  const ips = Array.isArray(raw.ips)
    ? (raw.ips as Array<Record<string, unknown>>).map((ip) => {
        const { version: _v, ...rest } = ip;
        return rest as unknown as NonNullable<CniResult['ips']>[number];
      })
    : [];
  return {
    interfaces: Array.isArray(raw.interfaces) ? (raw.interfaces as CniResult['interfaces']) : [],
    ips,
    routes: Array.isArray(raw.routes) ? (raw.routes as CniResult['routes']) : [],
    dns: raw.dns && typeof raw.dns === 'object' ? (raw.dns as CniResult['dns']) : {},
  };
}

/** When tabby is not first in a conflist: keep the earlier plugins' interfaces/IPs/routes and append ours. */
export function mergeWithPrev(prev: Omit<CniResult, 'cniVersion'> | undefined, ours: Omit<CniResult, 'cniVersion'>): Omit<CniResult, 'cniVersion'> {
  if (!prev) return ours;
  const offset = prev.interfaces?.length ?? 0;
  const dns = ours.dns && Object.keys(ours.dns).length > 0 ? ours.dns : (prev.dns ?? {});
  return {
    interfaces: [...(prev.interfaces ?? []), ...(ours.interfaces ?? [])],
    ips: [...(prev.ips ?? []), ...(ours.ips ?? []).map((ip) => (ip.interface === undefined ? ip : { ...ip, interface: ip.interface + offset }))],
    routes: [...(prev.routes ?? []), ...(ours.routes ?? [])],
    dns,
  };
}
