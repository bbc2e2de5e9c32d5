/**
 * Address arithmetic for IPAM: IPv4 and IPv6 addresses as bigints, so one code path serves both
 * families (an IPv6 /48 pool has 2^74 blocks of /122 — numbers must not lose precision).
 */
import ipaddr from 'ipaddr.js';
import { parseIP } from '../api/net.js';
import { IpamError } from './errors.js';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address (host bits zero). */
  base: bigint;
  prefix: number;
  /** 32 or 128. */
  bits: number;
}

export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** Parse an address; throws IpamError InvalidAddress. */
export function parseIp(s: string): { family: Family; value: bigint } {
  const addr = parseIP(s.trim());
  if (!addr) throw new IpamError('InvalidAddress', `${JSON.stringify(s)} is not an IP address`);
  const bytes = addr.toByteArray();
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return { family: addr.kind() === 'ipv4' ? 4 : 6, value };
}

export function formatIp(family: Family, value: bigint): string {
  const n = family === 4 ? 4 : 16;
  const bytes: number[] = new Array<number>(n);
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/**
 * Parse "a.b.c.d/n" or "x::/n". With `strict` (the default) host bits must be zero, as Calico
 * requires for pools and blocks; otherwise they are masked off.
 */
export function parseCidr(s: string, strict = true): Cidr {
  const slash = s.indexOf('/');
  if (slash < 0) throw new IpamError('InvalidCidr', `${JSON.stringify(s)} is not a CIDR (missing /prefix)`);
  const { family, value } = parseIp(s.slice(0, slash));
  const bits = familyBits(family);
  const prefixText = s.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d+$/.test(prefixText) || prefix > bits) {
    throw new IpamError('InvalidCidr', `${JSON.stringify(s)} has an invalid prefix length`);
  }
  const base = value & prefixMask(bits, prefix);
  if (strict && base !== value) {
    throw new IpamError('InvalidCidr', `${JSON.stringify(s)} has host bits set`, {
      hint: `use ${formatIp(family, base)}/${prefix}`,
    });
  }
  return { family, base, prefix, bits };
}

function prefixMask(bits: number, prefix: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return all ^ ((1n << BigInt(bits - prefix)) - 1n);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.base)}/${c.prefix}`;
}

/** Number of addresses in the CIDR. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(c.bits - c.prefix);
}

export function cidrContains(c: Cidr, family: Family, value: bigint): boolean {
  return family === c.family && value >= c.base && value < c.base + cidrSize(c);
}

/** True when `inner` lies entirely within `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.family === outer.family && inner.prefix >= outer.prefix && cidrContains(outer, inner.family, inner.base);
}

/** The CIDR of prefix length `prefix` that contains the address. */
export function enclosingCidr(family: Family, value: bigint, prefix: number): Cidr {
  const bits = familyBits(family);
  return { family, base: value & prefixMask(bits, prefix), prefix, bits };
}

/** Number of blocks of length `blockSize` in the pool. */
export function blockCount(pool: Cidr, blockSize: number): bigint {
  return 1n << BigInt(blockSize - pool.prefix);
}

/** The i-th block of length `blockSize` in the pool. */
export function nthBlock(pool: Cidr, blockSize: number, i: bigint): Cidr {
  const size = 1n << BigInt(pool.bits - blockSize);
  return { family: pool.family, base: pool.base + i * size, prefix: blockSize, bits: pool.bits };
}
