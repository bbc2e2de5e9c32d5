/**
 * Netlink framing, pure (no I/O): a growable writer with nested-attribute support, a bounds-checked
 * reader, nlmsghdr and NLMSG_ERROR (incl. extended ACK) decoding, and address helpers.
 *
 * Layout reminders (linux/netlink.h):
 *   nlmsghdr  = len u32 | type u16 | flags u16 | seq u32 | pid u32          (16 bytes, host order)
 *   rtattr    = len u16 | type u16 | payload, padded to 4 bytes; len excludes the final padding
 *   nested    = an rtattr whose payload is more rtattrs; its len covers the children incl. padding
 */
import ipaddr from 'ipaddr.js';
import { AF, NLMSG, NLMSGERR_ATTR, NLM_F, NLMSG_HDRLEN, type Family } from './constants.js';
import { NetlinkDecodeError, NetlinkInputError } from './errors.js';

export const align4 = (n: number): number => (n + 3) & ~3;
/** Attribute type bits that are flags, not part of the type (NLA_F_NESTED, NLA_F_NET_BYTEORDER). */
const NLA_TYPE_MASK = 0x3fff;

export class Writer {
  buf: Buffer;
  off = 0;
  constructor(size = 4096) {
    this.buf = Buffer.alloc(size);
  }
  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }
  reset(): this {
    this.off = 0;
    return this;
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf.writeUInt8(v & 0xff, this.off);
    this.off += 1;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v & 0xffff, this.off);
    this.off += 2;
    return this;
  }
  u16be(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.off);
    this.off += 2;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.off);
    this.off += 4;
    return this;
  }
  i32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32LE(v | 0, this.off);
    this.off += 4;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
    return this;
  }
  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.off, this.off + n);
    this.off += n;
    return this;
  }
  pad(): this {
    return this.zeros(align4(this.off) - this.off);
  }

  /** Starts an nlmsghdr; finish with endMessage(start). */
  beginMessage(type: number, flags: number, seq: number, pid = 0): number {
    const start = this.off;
    this.u32(0).u16(type).u16(flags).u32(seq).u32(pid);
    return start;
  }
  endMessage(start: number): void {
    this.pad();
    this.buf.writeUInt32LE(this.off - start, start);
  }

  /** Starts an rtattr (nested or not); finish with endAttr(start). */
  beginAttr(type: number): number {
    this.pad();
    const start = this.off;
    this.u16(0).u16(type);
    return start;
  }
  endAttr(start: number): void {
    this.buf.writeUInt16LE(this.off - start, start);
    this.pad();
  }
  attrBytes(type: number, b: Uint8Array): this {
    const s = this.beginAttr(type);
    this.bytes(b);
    this.endAttr(s);
    return this;
  }
  attrU8(type: number, v: number): this {
    const s = this.beginAttr(type);
    this.u8(v);
    this.endAttr(s);
    return this;
  }
  attrU16(type: number, v: number): this {
    const s = this.beginAttr(type);
    this.u16(v);
    this.endAttr(s);
    return this;
  }
  attrU16be(type: number, v: number): this {
    const s = this.beginAttr(type);
    this.u16be(v);
    this.endAttr(s);
    return this;
  }
  attrU32(type: number, v: number): this {
    const s = this.beginAttr(type);
    this.u32(v);
    this.endAttr(s);
    return this;
  }
  /** NUL-terminated string (IFLA_IFNAME). */
  attrCString(type: number, s: string): this {
    return this.attrBytes(type, Buffer.from(s + '\0', 'utf8'));
  }
  /** String without NUL (IFLA_INFO_KIND, as iproute2 sends it). */
  attrString(type: number, s: string): this {
    return this.attrBytes(type, Buffer.from(s, 'utf8'));
  }
  /** A copy of what was written. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.off));
  }
}

/** Bounds-checked cursor over [off, end) of a buffer; sub() cannot run past its parent. */
export class Reader {
  constructor(
    readonly buf: Buffer,
    public off = 0,
    readonly end = buf.length,
  ) {}
  get left(): number {
    return this.end - this.off;
  }
  private need(n: number, what: string): void {
    if (this.off + n > this.end) throw new NetlinkDecodeError(`truncated ${what}: need ${n} bytes at offset ${this.off}, have ${this.end - this.off}`);
  }
  u8(): number {
    this.need(1, 'u8');
    return this.buf.readUInt8(this.off++);
  }
  u16(): number {
    this.need(2, 'u16');
    const v = this.buf.readUInt16LE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4, 'u32');
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  i32(): number {
    this.need(4, 'i32');
    const v = this.buf.readInt32LE(this.off);
    this.off += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n, 'bytes');
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  skip(n: number): void {
    this.need(n, 'skip');
    this.off += n;
  }
  sub(n: number): Reader {
    this.need(n, 'sub-range');
    const r = new Reader(this.buf, this.off, this.off + n);
    this.off += n;
    return r;
  }
}

/** One attribute: type without flag bits, payload as a view (valid until the buffer is reused). */
export interface Attr {
  type: number;
  nested: boolean;
  data: Buffer;
}

/** Splits the rest of a reader into attributes. Malformed lengths throw NetlinkDecodeError. */
export function parseAttrs(r: Reader): Attr[] {
  const out: Attr[] = [];
  while (r.left >= 4) {
    const start = r.off;
    const len = r.u16();
    const rawType = r.u16();
    if (len < 4 || start + len > r.end) throw new NetlinkDecodeError(`bad rtattr length ${len} at offset ${start}`);
    out.push({ type: rawType & NLA_TYPE_MASK, nested: (rawType & 0x8000) !== 0, data: r.buf.subarray(start + 4, start + len) });
    r.off = Math.min(start + align4(len), r.end);
  }
  return out;
}

export const attrsOf = (data: Buffer): Attr[] => parseAttrs(new Reader(data));
export const u32Of = (a: Attr): number => new Reader(a.data).u32();
export const u16Of = (a: Attr): number => new Reader(a.data).u16();
export const u8Of = (a: Attr): number => new Reader(a.data).u8();
export function cstringOf(a: Attr): string {
  const nul = a.data.indexOf(0);
  return a.data.toString('utf8', 0, nul < 0 ? a.data.length : nul);
}

// ---- messages ------------------------------------------------------------------------------

export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Payload after the 16-byte header, as a view. */
  payload: Buffer;
}

/** Splits a received datagram into netlink messages. */
export function parseMessages(buf: Buffer, len = buf.length): NlMsg[] {
  const out: NlMsg[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= len) {
    const mlen = buf.readUInt32LE(off);
    if (mlen < NLMSG_HDRLEN || off + mlen > len) throw new NetlinkDecodeError(`bad nlmsg_len ${mlen} at offset ${off} (datagram ${len} bytes)`);
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + mlen),
    });
    off += align4(mlen);
  }
  return out;
}

/** Decoded NLMSG_ERROR: errno 0 is an ACK. */
export interface NlError {
  /** Positive errno (the kernel sends it negated); 0 = success ACK. */
  errno: number;
  /** The request header the kernel echoes. */
  request: { len: number; type: number; flags: number; seq: number };
  /** NLMSGERR_ATTR_MSG, when the kernel explained itself. */
  extAckMsg?: string;
  /** NLMSGERR_ATTR_OFFS: byte offset of the offending attribute in the request. */
  extAckOffset?: number;
}

export function decodeError(m: NlMsg): NlError {
  const r = new Reader(m.payload);
  const errno = -r.i32();
  const hdrStart = r.off;
  const len = r.u32();
  const type = r.u16();
  const flags = r.u16();
  const seq = r.u32();
  r.u32();
  const out: NlError = { errno, request: { len, type, flags, seq } };
  if (m.flags & NLM_F.ACK_TLVS) {
    // The echoed request is only its header when the kernel capped it, the whole request otherwise.
    const echoed = m.flags & NLM_F.CAPPED ? NLMSG_HDRLEN : align4(len);
    r.off = Math.min(hdrStart + echoed, r.end);
    for (const a of parseAttrs(r)) {
      if (a.type === NLMSGERR_ATTR.MSG) out.extAckMsg = cstringOf(a);
      else if (a.type === NLMSGERR_ATTR.OFFS && a.data.length >= 4) out.extAckOffset = a.data.readUInt32LE(0);
    }
  }
  return out;
}

export const isDone = (m: NlMsg): boolean => m.type === NLMSG.DONE;
export const isError = (m: NlMsg): boolean => m.type === NLMSG.ERROR;

// ---- addresses -----------------------------------------------------------------------------

export interface IpBytes {
  family: 2 | 10;
  bytes: Buffer;
}

function parseV4(s: string): Buffer | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const b = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    b[i] = v;
  }
  return b;
}

/** "10.0.0.1" or "fd00::1" → family + network-order bytes. */
export function parseIp(s: string): IpBytes {
  const v4 = parseV4(s);
  if (v4) return { family: AF.INET, bytes: v4 };
  if (s.includes(':') && ipaddr.IPv6.isValid(s)) return { family: AF.INET6, bytes: Buffer.from(ipaddr.IPv6.parse(s).toByteArray()) };
  throw new NetlinkInputError(`not an IP address: ${JSON.stringify(s)}`);
}

export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length === 16) return ipaddr.fromByteArray(Array.from(b)).toString();
  throw new NetlinkDecodeError(`address of ${b.length} bytes is neither IPv4 nor IPv6`);
}

export interface CidrBytes extends IpBytes {
  prefixLen: number;
}

/** "10.0.0.0/24" (a bare address means a host prefix). */
export function parseCidr(s: string): CidrBytes {
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  const max = ip.family === AF.INET ? 32 : 128;
  if (slash < 0) return { ...ip, prefixLen: max };
  const lenStr = s.slice(slash + 1);
  const prefixLen = Number(lenStr);
  if (!/^\d{1,3}$/.test(lenStr) || prefixLen > max) throw new NetlinkInputError(`bad prefix length in ${JSON.stringify(s)}`);
  return { ...ip, prefixLen };
}

export const familyOfIp = (s: string): 2 | 10 => parseIp(s).family;
export const familyName = (f: Family | number): string => (f === AF.INET ? 'inet' : f === AF.INET6 ? 'inet6' : f === AF.BRIDGE ? 'bridge' : `family ${f}`);

export function parseMac(s: string): Buffer {
  const parts = s.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new NetlinkInputError(`not a MAC address: ${JSON.stringify(s)}`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}
