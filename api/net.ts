/** IP/CIDR helpers over ipaddr.js: strict parsing, masking, overlap. */
import ipaddr from 'ipaddr.js';

export type IPAddress = ipaddr.IPv4 | ipaddr.IPv6;

export interface ParsedCidr {
  family: 4 | 6;
  addr: IPAddress;
  prefix: number;
}

const V4_DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Parsed addresses and CIDRs are cached by their text: the agent and felix re-read the same few
 * hundred node addresses and block CIDRs on every recompute, and ipaddr.js parsing was the largest
 * single cost of one (a node joining a 50-node mesh). The cached objects are shared: read-only.
 * The caches are cleared when they reach CACHE_MAX entries, so they stay bounded.
 */
const CACHE_MAX = 8192;
const ipCache = new Map<string, IPAddress | undefined>();
const cidrCache = new Map<string, ParsedCidr | undefined>();
const canonCache = new WeakMap<ParsedCidr, string>();

function cached<T>(cache: Map<string, T>, s: string, make: (s: string) => T): T {
  if (cache.has(s)) return cache.get(s) as T;
  if (cache.size >= CACHE_MAX) cache.clear();
  const v = make(s);
  cache.set(s, v);
  return v;
}

/** Parse an IP address strictly (dotted quad for IPv4, no zone ids); undefined when invalid. Read-only result. */
export function parseIP(s: string): IPAddress | undefined {
  if (typeof s !== 'string') return undefined;
  return cached(ipCache, s, parseIPUncached);
}

function parseIPUncached(s: string): IPAddress | undefined {
  if (s.includes(':')) {
    if (s.includes('%') || !ipaddr.IPv6.isValid(s)) return undefined;
    return ipaddr.IPv6.parse(s);
  }
  const m = V4_DOTTED.exec(s);
  if (!m || m.slice(1).some((o) => Number(o) > 255 || (o.length > 1 && o.startsWith('0')))) return undefined;
  return ipaddr.IPv4.parse(s);
}

/** `IP`, `IP:port` or `[IPv6]:port`. */
export function parsePeerIP(s: string): { ip: string; port?: number } | undefined {
  if (parseIP(s)) return { ip: s };
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([0-9.]+):(\d{1,5})$/.exec(s);
  if (!m || !parseIP(m[1]!)) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { ip: m[1]!, port } : undefined;
}

/** Parse `addr/prefix` strictly; undefined when invalid. The address need not be masked. Read-only result. */
export function parseCidr(s: string): ParsedCidr | undefined {
  if (typeof s !== 'string') return undefined;
  return cached(cidrCache, s, parseCidrUncached);
}

function parseCidrUncached(s: string): ParsedCidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const addr = parseIP(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!addr || !/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  const family = addr.kind() === 'ipv4' ? 4 : 6;
  if (prefix > (family === 4 ? 32 : 128)) return undefined;
  return { family, addr, prefix };
}

const ipTextCache = new Map<string, string | undefined>();
const cidrTextCache = new Map<string, string | undefined>();

/** The canonical masked text of a CIDR (`10.0.0.1/16` → `10.0.0.0/16`), undefined when invalid; cached. */
export function canonicalCidrText(s: string): string | undefined {
  if (typeof s !== 'string') return undefined;
  return cached(cidrTextCache, s, (x) => {
    const c = parseCidr(x);
    return c ? canonicalCidr(c) : undefined;
  });
}

/** The canonical text of an address (`FD00::0001` → `fd00::1`), undefined when invalid; cached. */
export function canonicalIp(s: string): string | undefined {
  return cached(ipTextCache, s, (x) => {
    const a = parseIP(x);
    return a ? ipToString(a) : undefined;
  });
}

export function ipToString(addr: IPAddress): string {
  return addr.kind() === 'ipv6' ? (addr as ipaddr.IPv6).toRFC5952String() : addr.toString();
}

function maskBytes(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return bits === 8 ? b : b & ((0xff << (8 - bits)) & 0xff);
  });
}

/** The network address of a CIDR (host bits cleared). */
export function networkOf(c: ParsedCidr): IPAddress {
  return ipaddr.fromByteArray(maskBytes(c.addr.toByteArray(), c.prefix));
}

/** Canonical masked form, e.g. `10.0.0.1/16` → `10.0.0.0/16`, `FD00::0/8` → `fd00::/8`. */
export function canonicalCidr(c: ParsedCidr): string {
  let v = canonCache.get(c);
  if (v === undefined) {
    v = `${ipToString(networkOf(c))}/${c.prefix}`;
    canonCache.set(c, v);
  }
  return v;
}

export function isMasked(c: ParsedCidr): boolean {
  const bytes = c.addr.toByteArray();
  return maskBytes(bytes, c.prefix).every((b, i) => b === bytes[i]);
}

/** True when the two networks share at least one address. */
export function cidrsOverlap(a: ParsedCidr, b: ParsedCidr): boolean {
  if (a.family !== b.family) return false;
  const p = Math.min(a.prefix, b.prefix);
  const ma = maskBytes(a.addr.toByteArray(), p);
  const mb = maskBytes(b.addr.toByteArray(), p);
  return ma.every((x, i) => x === mb[i]);
}

/** True when `ip` is inside `net`. */
export function cidrContains(net: ParsedCidr, ip: IPAddress): boolean {
  return cidrsOverlap(net, { family: ip.kind() === 'ipv4' ? 4 : 6, addr: ip, prefix: net.family === 4 ? 32 : 128 });
}

const MAC = /^([0-9a-fA-F]{2})(:[0-9a-fA-F]{2}){5}$/;
export function isMac(s: string): boolean {
  return MAC.test(s);
}
