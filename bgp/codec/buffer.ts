/**
 * Bounded cursor reader and growable writer. Every read checks bounds and throws a BgpError
 * (session-reset by default; callers narrow it) instead of reading past a declared length.
 * `sub(n)` returns a reader confined to the next n bytes and advances this one past them.
 */
import ipaddr from 'ipaddr.js';
import { BgpError } from './errors.js';

export interface ShortRead {
  code: number;
  subcode: number;
  what: string;
}

export class Reader {
  private pos: number;
  private readonly end: number;
  constructor(
    private readonly buf: Uint8Array,
    start = 0,
    end = buf.length,
    /** The NOTIFICATION to send when a read runs past the end. */
    private readonly short: ShortRead = { code: 3, subcode: 1, what: 'message' },
  ) {
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.end - this.pos;
  }
  atEnd(): boolean {
    return this.pos >= this.end;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new BgpError(this.short.code, this.short.subcode, `${this.short.what} truncated: need ${n} bytes, ${this.remaining} left`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }
  u16(): number {
    this.need(2);
    const b = this.buf;
    const v = ((b[this.pos] as number) << 8) | (b[this.pos + 1] as number);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    const v = (b[p] as number) * 0x1000000 + (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));
    this.pos += 4;
    return v;
  }
  /** A view (no copy) of the next n bytes. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
  /** The underlying bytes [from, to) (absolute offsets, as `offset` gives them), not copied. */
  bufferView(from: number, to: number): Uint8Array {
    return this.buf.subarray(from, to);
  }
  peekU8(): number {
    this.need(1);
    return this.buf[this.pos] as number;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  /** A reader over the next n bytes; this reader moves past them. */
  sub(n: number, short: ShortRead = this.short): Reader {
    this.need(n);
    const r = new Reader(this.buf, this.pos, this.pos + n, short);
    this.pos += n;
    return r;
  }
  ipv4(): string {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return `${b[p]}.${b[p + 1]}.${b[p + 2]}.${b[p + 3]}`;
  }
  ipv6(): string {
    return formatIpv6(this.bytes(16));
  }
}

export class Writer {
  private buf: Uint8Array;
  private len = 0;
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }
  get length(): number {
    return this.len;
  }
  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
  }
  u8(v: number): this {
    this.grow(1);
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    this.grow(2);
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u32(v: number): this {
    this.grow(4);
    this.buf[this.len++] = (v >>> 24) & 0xff;
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  ipv4(a: string): this {
    return this.bytes(parseIpv4(a));
  }
  ipv6(a: string): this {
    return this.bytes(parseIpv6(a));
  }
  /** Reserve n bytes to patch later (lengths); returns their offset. */
  reserve(n: number): number {
    this.grow(n);
    const at = this.len;
    this.buf.fill(0, at, at + n);
    this.len += n;
    return at;
  }
  patchU8(at: number, v: number): void {
    this.buf[at] = v & 0xff;
  }
  patchU16(at: number, v: number): void {
    this.buf[at] = (v >>> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }
  /** Drop everything after `len` (used to undo a partial write). */
  truncate(len: number): void {
    this.len = Math.min(len, this.len);
  }
  /** A copy of the written bytes. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
  view(from = 0, to = this.len): Uint8Array {
    return this.buf.subarray(from, to);
  }
}

export function parseIpv4(a: string): Uint8Array {
  const parts = a.split('.');
  const out = new Uint8Array(4);
  if (parts.length !== 4) throw new TypeError(`not an IPv4 address: ${a}`);
  for (let i = 0; i < 4; i++) {
    const s = parts[i] as string;
    const n = Number(s);
    if (!/^\d{1,3}$/.test(s) || n > 255) throw new TypeError(`not an IPv4 address: ${a}`);
    out[i] = n;
  }
  return out;
}

export function parseIpv6(a: string): Uint8Array {
  const pct = a.indexOf('%');
  const s = pct >= 0 ? a.slice(0, pct) : a;
  if (!ipaddr.IPv6.isValid(s)) throw new TypeError(`not an IPv6 address: ${a}`);
  return Uint8Array.from(ipaddr.IPv6.parse(s).toByteArray());
}

/** RFC 5952 canonical text form. */
export function formatIpv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[i * 2] ?? 0) << 8) | (b[i * 2 + 1] ?? 0));
  // longest run of zeros (length >= 2)
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] === 0) {
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > bestLen && j - i >= 2) {
        bestStart = i;
        bestLen = j - i;
      }
      i = j;
    } else i++;
  }
  const hex = (x: number[]): string => x.map((v) => v.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

export function isIpv6(a: string): boolean {
  return a.includes(':');
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
