/**
 * NLRI prefixes (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 path ids). A prefix on the wire is
 * length(1) + ceil(length/8) bytes; with ADD-PATH a 4-byte path id comes first. Prefixes are
 * canonical CIDR strings (host bits cleared) so they can key Maps.
 */
import type { Family, Nlri } from '../types.js';
import type { Reader, Writer } from './buffer.js';
import { formatIpv6, parseIpv4, parseIpv6 } from './buffer.js';
import { BgpError, NotifCode, UpdateSub } from './errors.js';

export function familyBits(f: Family): number {
  return f === 'ipv4-unicast' ? 32 : 128;
}

/** Decode a run of prefixes filling `r` entirely. Errors are session-reset (RFC 7606 §5.3). */
export function decodeNlriList(r: Reader, family: Family, addPath: boolean): Nlri[] {
  const out: Nlri[] = [];
  const max = familyBits(family);
  while (!r.atEnd()) {
    const pathId = addPath ? r.u32() : undefined;
    const len = r.u8();
    if (len > max) {
      throw new BgpError(NotifCode.UPDATE, UpdateSub.INVALID_NETWORK_FIELD, `${family} prefix length ${len} > ${max}`);
    }
    const nb = (len + 7) >> 3;
    if (r.remaining < nb) {
      throw new BgpError(NotifCode.UPDATE, UpdateSub.INVALID_NETWORK_FIELD, `${family} prefix /${len} truncated`);
    }
    const bytes = r.bytes(nb);
    const prefix = max === 32 ? formatV4Prefix(bytes, len) : formatV6Prefix(bytes, len);
    out.push(pathId === undefined ? { prefix } : { prefix, pathId });
  }
  return out;
}

/**
 * The IPv4 NLRI of one UPDATE field as its wire bytes (validated, not yet parsed into objects): a
 * table transfer reads a million prefixes as numbers straight from these (see forEachV4), and the
 * Nlri objects and prefix strings exist only when something asks for `nlri`.
 */
export interface PackedNlri {
  readonly bytes: Uint8Array;
  readonly addPath: boolean;
  /** Number of prefixes. */
  readonly count: number;
}

/**
 * Check a run of IPv4 prefixes filling `r` (the same errors as decodeNlriList) and return it packed.
 * No objects per prefix.
 */
export function scanV4Nlri(r: Reader, addPath: boolean): PackedNlri {
  const start = r.offset;
  let count = 0;
  while (!r.atEnd()) {
    if (addPath) r.skip(4);
    const len = r.u8();
    if (len > 32) throw new BgpError(NotifCode.UPDATE, UpdateSub.INVALID_NETWORK_FIELD, `ipv4-unicast prefix length ${len} > 32`);
    const nb = (len + 7) >> 3;
    if (r.remaining < nb) throw new BgpError(NotifCode.UPDATE, UpdateSub.INVALID_NETWORK_FIELD, `ipv4-unicast prefix /${len} truncated`);
    r.skip(nb);
    count++;
  }
  return { bytes: r.bufferView(start, r.offset), addPath, count };
}

/**
 * Call `fn(addr, len, pathId)` for the packed prefixes from byte `from` on (host bits cleared;
 * `addr` an unsigned 32-bit number), at most `max` of them; returns the byte offset reached.
 */
export function forEachV4(p: PackedNlri, from: number, max: number, fn: (addr: number, len: number, pathId: number) => void): number {
  const b = p.bytes;
  const end = b.length;
  let off = from;
  for (let n = 0; off < end && n < max; n++) {
    let pathId = 0;
    if (p.addPath) {
      pathId = (((b[off] ?? 0) << 24) | ((b[off + 1] ?? 0) << 16) | ((b[off + 2] ?? 0) << 8) | (b[off + 3] ?? 0)) >>> 0;
      off += 4;
    }
    const len = b[off++] ?? 0;
    const nb = (len + 7) >> 3;
    let addr = 0;
    if (nb > 0) addr = (b[off] ?? 0) << 24;
    if (nb > 1) addr |= (b[off + 1] ?? 0) << 16;
    if (nb > 2) addr |= (b[off + 2] ?? 0) << 8;
    if (nb > 3) addr |= b[off + 3] ?? 0;
    off += nb;
    fn(len === 0 ? 0 : (addr & (-1 << (32 - len))) >>> 0, len, pathId);
  }
  return off;
}

/** The packed prefixes as Nlri objects (what decodeNlriList returns for the same bytes). */
export function unpackV4(p: PackedNlri): Nlri[] {
  const out: Nlri[] = [];
  forEachV4(p, 0, p.count, (addr, len, pathId) => out.push(p.addPath ? { prefix: formatV4(addr, len), pathId } : { prefix: formatV4(addr, len) }));
  return out;
}

/** "a.b.c.d/len" (flat string) for an unsigned 32-bit address whose host bits are clear. */
export function formatV4(addr: number, len: number): string {
  chars.length = 0;
  pushDecimal(addr >>> 24);
  chars.push(46);
  pushDecimal((addr >>> 16) & 255);
  chars.push(46);
  pushDecimal((addr >>> 8) & 255);
  chars.push(46);
  pushDecimal(addr & 255);
  chars.push(47);
  pushDecimal(len);
  return String.fromCharCode.apply(null, chars);
}

/** Character codes of the prefix being formatted (reused: no garbage per prefix). */
const chars: number[] = [];

function pushDecimal(v: number): void {
  if (v >= 100) chars.push(48 + ((v / 100) | 0));
  if (v >= 10) chars.push(48 + ((v / 10) % 10 | 0));
  chars.push(48 + (v % 10));
}

/**
 * "a.b.c.d/len" as a flat string. A template literal would make a tree of concatenated strings
 * (~100 bytes each instead of 32), and prefixes are kept for every route of the RIB.
 */
function formatV4Prefix(b: Uint8Array, len: number): string {
  let a0 = b[0] ?? 0;
  let a1 = b[1] ?? 0;
  let a2 = b[2] ?? 0;
  let a3 = b[3] ?? 0;
  if (len & 7) {
    // clear host bits in the last partial byte
    const mask = (0xff << (8 - (len & 7))) & 0xff;
    const last = (len >> 3);
    if (last === 0) a0 &= mask;
    else if (last === 1) a1 &= mask;
    else if (last === 2) a2 &= mask;
    else a3 &= mask;
  }
  chars.length = 0;
  pushDecimal(a0);
  chars.push(46);
  pushDecimal(a1);
  chars.push(46);
  pushDecimal(a2);
  chars.push(46);
  pushDecimal(a3);
  chars.push(47);
  pushDecimal(len);
  return String.fromCharCode.apply(null, chars);
}

function formatV6Prefix(b: Uint8Array, len: number): string {
  const full = new Uint8Array(16);
  full.set(b);
  if (len & 7) full[len >> 3] = (full[len >> 3] ?? 0) & ((0xff << (8 - (len & 7))) & 0xff);
  return `${formatIpv6(full)}/${len}`;
}

/** Parse a CIDR string; throws TypeError on nonsense (a local programming/config error). */
export function parsePrefix(prefix: string): { family: Family; bytes: Uint8Array; len: number } {
  const slash = prefix.indexOf('/');
  if (slash < 0) throw new TypeError(`not a CIDR prefix: ${prefix}`);
  const addr = prefix.slice(0, slash);
  const len = Number(prefix.slice(slash + 1));
  const v6 = addr.includes(':');
  const bits = v6 ? 128 : 32;
  if (!Number.isInteger(len) || len < 0 || len > bits) throw new TypeError(`bad prefix length: ${prefix}`);
  const bytes = v6 ? parseIpv6(addr) : parseIpv4(addr);
  return { family: v6 ? 'ipv6-unicast' : 'ipv4-unicast', bytes, len };
}

/** Fast path for "a.b.c.d/len": returns false when the text is not a plain IPv4 prefix. */
function encodeV4Fast(w: Writer, prefix: string): boolean {
  const oct = [0, 0, 0, 0];
  let i = 0;
  let k = 0;
  let v = -1;
  for (; i < prefix.length; i++) {
    const c = prefix.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      v = (v < 0 ? 0 : v * 10) + (c - 48);
      if (v > 255) return false;
    } else if (c === 46 /* . */ && k < 3 && v >= 0) {
      oct[k++] = v;
      v = -1;
    } else if (c === 47 /* / */ && k === 3 && v >= 0) {
      oct[3] = v;
      break;
    } else return false;
  }
  if (i >= prefix.length) return false;
  const len = Number(prefix.slice(i + 1));
  if (!Number.isInteger(len) || len < 0 || len > 32) return false;
  const nb = (len + 7) >> 3;
  w.u8(len);
  for (let j = 0; j < nb; j++) {
    let b = oct[j] as number;
    if (j === nb - 1 && len & 7) b &= (0xff << (8 - (len & 7))) & 0xff;
    w.u8(b);
  }
  return true;
}

export function encodeNlri(w: Writer, n: Nlri, addPath: boolean): void {
  if (addPath) w.u32(n.pathId ?? 0);
  if (encodeV4Fast(w, n.prefix)) return;
  const p = parsePrefix(n.prefix);
  const nb = (p.len + 7) >> 3;
  w.u8(p.len);
  const bytes = p.bytes.subarray(0, nb);
  if (p.len & 7 && nb > 0) {
    const copy = Uint8Array.from(bytes);
    copy[nb - 1] = (copy[nb - 1] ?? 0) & ((0xff << (8 - (p.len & 7))) & 0xff);
    w.bytes(copy);
  } else w.bytes(bytes);
}

/** Bytes one NLRI takes on the wire. */
export function nlriSize(n: Nlri, addPath: boolean): number {
  const slash = n.prefix.indexOf('/');
  const len = Number(n.prefix.slice(slash + 1));
  return (addPath ? 4 : 0) + 1 + ((len + 7) >> 3);
}

/** Normalise a CIDR string to canonical form (host bits cleared, RFC 5952 for IPv6). */
export function canonicalPrefix(prefix: string): string {
  const p = parsePrefix(prefix);
  const b = p.bytes.subarray(0, (p.len + 7) >> 3);
  return p.family === 'ipv4-unicast' ? formatV4Prefix(b, p.len) : formatV6Prefix(b, p.len);
}
