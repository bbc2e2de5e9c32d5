/**
 * The native edge: raw socket calls through koffi for what node:net cannot do — TCP_MD5SIG
 * (RFC 2385) on listening and outgoing sockets, IP_TTL / IP_MINTTL (GTSM, RFC 5082, multihop)
 * before connect, and a non-blocking connect whose completion we poll. Only bytes and errno
 * cross this boundary; passwords are copied into a struct and never logged.
 */
import { TabbyError } from '../../lib/errors.js';
import { libcErrno, libcFunc } from '../../lib/libc.js';

// Linux constants (asm-generic; x86_64 and arm64 agree).
export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_ERROR = 4;
const IPPROTO_IP = 0;
const IP_TTL = 2;
const IP_MINTTL = 21;
const IPPROTO_IPV6 = 41;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MINHOPCOUNT = 73;
const IPPROTO_TCP = 6;
const TCP_MD5SIG = 14;
const ENOENT = 2;
const EINPROGRESS = 115;
const POLLOUT = 4;
const POLLERR = 8;
const POLLHUP = 16;
export const TCP_MD5SIG_MAXKEYLEN = 80;

export class SocketOptionError extends TabbyError {
  readonly errno: number;
  constructor(what: string, errno: number, hint?: string) {
    super('BGP_SOCKOPT', `${what} failed: errno ${errno}`, { hint: hint ?? 'run as root (CAP_NET_ADMIN) on Linux with TCP-MD5 support' });
    this.errno = errno;
  }
}

interface Libc {
  socket(domain: number, type: number, proto: number): number;
  setsockopt(fd: number, level: number, name: number, val: Buffer, len: number): number;
  getsockopt(fd: number, level: number, name: number, val: Buffer, len: Buffer): number;
  bind(fd: number, addr: Buffer, len: number): number;
  connect(fd: number, addr: Buffer, len: number): number;
  close(fd: number): number;
  poll(fds: Buffer, n: number, timeout: number): number;
  errno(): number;
}

let libc: Libc | undefined;
function lib(): Libc {
  if (libc) return libc;
  libc = {
    socket: libcFunc<Libc['socket']>('int socket(int, int, int)'),
    setsockopt: libcFunc<Libc['setsockopt']>('int setsockopt(int, int, int, void *, uint32_t)'),
    getsockopt: libcFunc<Libc['getsockopt']>('int getsockopt(int, int, int, void *, void *)'),
    bind: libcFunc<Libc['bind']>('int bind(int, void *, uint32_t)'),
    connect: libcFunc<Libc['connect']>('int connect(int, void *, uint32_t)'),
    close: libcFunc<Libc['close']>('int close(int)'),
    poll: libcFunc<Libc['poll']>('int poll(void *, uint64_t, int)'),
    errno: libcErrno,
  };
  return libc;
}

/** struct sockaddr_in / sockaddr_in6 for an address and port. */
export function sockaddr(address: string, port: number): Buffer {
  // A literal (callers pass addresses, not names): a colon means IPv6. net.isIPv6's regular
  // expression cost more than the rest of a mesh peer's set-up.
  if (address.includes(':')) {
    const b = Buffer.alloc(28);
    b.writeUInt16LE(AF_INET6, 0);
    b.writeUInt16BE(port, 2);
    const parts = expandV6(address);
    for (let i = 0; i < 8; i++) b.writeUInt16BE(parts[i]!, 8 + i * 2);
    return b;
  }
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  address.split('.').forEach((p, i) => b.writeUInt8(Number(p), 4 + i));
  return b;
}

function expandV6(a: string): number[] {
  const [head = '', tail = ''] = a.split('::');
  const h = head ? head.split(':').map((x) => parseInt(x, 16)) : [];
  const t = a.includes('::') && tail ? tail.split(':').map((x) => parseInt(x, 16)) : [];
  if (!a.includes('::')) return h;
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/**
 * Install (or with an empty password remove) the TCP-MD5 key for `peer` on a socket. On a
 * listening socket the kernel picks the key by the SYN's source address.
 */
export function setMd5(fd: number, peer: string, password: string): void {
  const key = Buffer.from(password, 'utf8');
  if (key.length > TCP_MD5SIG_MAXKEYLEN) {
    throw new TabbyError('BGP_MD5_KEY_TOO_LONG', `TCP-MD5 password is ${key.length} bytes; the kernel allows ${TCP_MD5SIG_MAXKEYLEN}`, {
      hint: 'use a shorter BGP password',
    });
  }
  const s = Buffer.alloc(216);
  sockaddr(peer, 0).copy(s, 0);
  s.writeUInt16LE(key.length, 130);
  key.copy(s, 136);
  const r = lib().setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, s, s.length);
  s.fill(0);
  if (r === 0) return;
  const errno = lib().errno();
  // Removing a key that was never installed answers ENOENT: there is nothing to remove.
  if (key.length === 0 && errno === ENOENT) return;
  throw new SocketOptionError('setsockopt(TCP_MD5SIG)', errno);
}

function setInt(fd: number, level: number, name: number, v: number, what: string): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  if (lib().setsockopt(fd, level, name, b, 4) !== 0) throw new SocketOptionError(what, lib().errno());
}

/** Outgoing TTL (multihop / GTSM sends 255). */
export function setTtl(fd: number, v6: boolean, ttl: number): void {
  if (v6) setInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl, 'setsockopt(IPV6_UNICAST_HOPS)');
  else setInt(fd, IPPROTO_IP, IP_TTL, ttl, 'setsockopt(IP_TTL)');
}

/** GTSM receive check: drop packets whose TTL is below `minTtl` (RFC 5082). */
export function setMinTtl(fd: number, v6: boolean, minTtl: number): void {
  if (v6) setInt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, minTtl, 'setsockopt(IPV6_MINHOPCOUNT)');
  else setInt(fd, IPPROTO_IP, IP_MINTTL, minTtl, 'setsockopt(IP_MINTTL)');
}

export interface RawConnectOptions {
  host: string;
  port: number;
  localAddress?: string;
  localPort?: number;
  password?: string;
  ttl?: number;
  minTtl?: number;
}

/** Create a non-blocking socket with the options applied and start connecting. Returns the fd. */
export function rawConnectStart(o: RawConnectOptions): number {
  const v6 = o.host.includes(':');
  const c = lib();
  const fd = c.socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SocketOptionError('socket()', c.errno());
  try {
    if (o.password) setMd5(fd, o.host, o.password);
    if (o.ttl !== undefined) setTtl(fd, v6, o.ttl);
    if (o.minTtl !== undefined) setMinTtl(fd, v6, o.minTtl);
    if (o.localAddress !== undefined || o.localPort !== undefined) {
      setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1, 'setsockopt(SO_REUSEADDR)');
      const sa = sockaddr(o.localAddress ?? (v6 ? '::' : '0.0.0.0'), o.localPort ?? 0);
      if (c.bind(fd, sa, sa.length) !== 0) throw new SocketOptionError(`bind(${o.localAddress ?? ''}:${o.localPort ?? 0})`, c.errno(), 'is the source address configured on this host?');
    }
    const sa = sockaddr(o.host, o.port);
    if (c.connect(fd, sa, sa.length) !== 0) {
      const e = c.errno();
      if (e !== EINPROGRESS) throw new SocketOptionError('connect()', e, 'check the peer address and routing');
    }
    return fd;
  } catch (err) {
    c.close(fd);
    throw err;
  }
}

/** Poll a connecting fd: 'pending', 'connected', or an errno for a failed connect. */
export function rawConnectPoll(fd: number): 'pending' | 'connected' | number {
  const c = lib();
  const p = Buffer.alloc(8);
  p.writeInt32LE(fd, 0);
  p.writeInt16LE(POLLOUT, 4);
  const n = c.poll(p, 1, 0);
  if (n <= 0) return 'pending';
  const rev = p.readInt16LE(6);
  if (!(rev & (POLLOUT | POLLERR | POLLHUP))) return 'pending';
  const v = Buffer.alloc(4);
  const l = Buffer.alloc(4);
  l.writeUInt32LE(4, 0);
  if (c.getsockopt(fd, SOL_SOCKET, SO_ERROR, v, l) !== 0) return c.errno();
  const err = v.readInt32LE(0);
  return err === 0 ? 'connected' : err;
}

export function closeFd(fd: number): void {
  lib().close(fd);
}
