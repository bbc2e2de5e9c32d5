/**
 * The only I/O in netlink/: libc calls through koffi (socket, bind, send, recv, setsockopt, setns,
 * poll, eventfd) and a netlink socket wrapper that moves bytes in and out and maps errno to
 * NetlinkError. Nothing here knows about message contents.
 *
 * Event-loop integration (why it looks like this): Node cannot watch a raw AF_NETLINK fd — `net` and
 * `dgram` refuse that handle type and libuv's uv_poll is not exposed. So:
 *  - sockets are SOCK_NONBLOCK; rtnetlink handles a request synchronously inside sendmsg() and also
 *    continues dumps inside recvmsg(), so the reply to a request is normally already queued when we
 *    call recv() and no waiting is needed at all (the CNI plugin's path);
 *  - when recv() says EAGAIN (multicast events, or a reply not there yet) we wait for readiness with
 *    poll(2) on [socket, eventfd] run through koffi's async call, i.e. on a libuv pool thread. An idle
 *    subscription therefore costs one parked thread and no CPU; close() writes the eventfd to wake
 *    and release it. A timer loop would burn CPU when idle, a worker_thread costs ~10 MB and a
 *    startup the CNI plugin cannot afford.
 */
import { closeSync, openSync } from 'node:fs';
import { libcErrno, libcFunc } from '../lib/libc.js';
import { AF, NETLINK_OPT, NETLINK_ROUTE, SOL_NETLINK, SOL_SOCKET, SO } from './constants.js';
import { NetlinkError, NetlinkInputError } from './errors.js';

const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const POLLIN = 1;
const MSG_TRUNC = 0x20;
const EAGAIN = 11;
const EINTR = 4;

interface Libc {
  socket: (domain: number, type: number, proto: number) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  send: ((fd: number, buf: Buffer, len: number, flags: number) => number) & {
    async: (fd: number, buf: Buffer, len: number, flags: number, cb: (err: unknown, res: number) => void) => void;
  };
  recv: (fd: number, buf: Buffer, len: number, flags: number) => number;
  setsockopt: (fd: number, level: number, name: number, val: Buffer, len: number) => number;
  getsockname: (fd: number, addr: Buffer, len: Buffer) => number;
  close: (fd: number) => number;
  setns: (fd: number, nstype: number) => number;
  eventfd: (initval: number, flags: number) => number;
  write: (fd: number, buf: Buffer, len: number) => number;
  poll: ((fds: Buffer, nfds: number, timeout: number) => number) & {
    async: (fds: Buffer, nfds: number, timeout: number, cb: (err: unknown, res: number) => void) => void;
  };
}

let libc: Libc | undefined;
/** Loads libc lazily so that importing the pure codec never touches FFI. */
function lc(): Libc {
  if (libc) return libc;
  libc = {
    socket: libcFunc('int socket(int, int, int)'),
    bind: libcFunc('int bind(int, void *, uint32_t)'),
    send: libcFunc('intptr_t send(int, void *, size_t, int)'),
    recv: libcFunc('intptr_t recv(int, void *, size_t, int)'),
    setsockopt: libcFunc('int setsockopt(int, int, int, void *, uint32_t)'),
    getsockname: libcFunc('int getsockname(int, void *, void *)'),
    close: libcFunc('int close(int)'),
    setns: libcFunc('int setns(int, int)'),
    eventfd: libcFunc('int eventfd(unsigned int, int)'),
    write: libcFunc('intptr_t write(int, void *, size_t)'),
    poll: libcFunc('int poll(void *, unsigned long, int)'),
  } as Libc;
  return libc;
}

const lastErrno = libcErrno;

// ---- namespaces ----------------------------------------------------------------------------

/** A netns name ("cni-123" → /var/run/netns/cni-123) or a path (/proc/<pid>/ns/net, /var/run/netns/x). */
export function netnsPath(netns: string): string {
  if (netns.startsWith('/')) return netns;
  if (!/^[A-Za-z0-9_.-]+$/.test(netns) || netns === '.' || netns === '..') throw new NetlinkInputError(`bad netns name ${JSON.stringify(netns)}`);
  return `/var/run/netns/${netns}`;
}

/** Opens a netns file; the caller closes the fd (fs.closeSync). */
export function openNetns(netns: string): number {
  try {
    return openSync(netnsPath(netns), 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new NetlinkError(code === 'ENOENT' ? 2 : 13, { op: `open netns ${netnsPath(netns)}` }, { cause: err });
  }
}

/**
 * Runs `fn` synchronously with the calling (main) thread switched into `netns`, then switches back.
 * Use it for things that are bound at creation/open time: sockets, /proc/sys/net files. `fn` must
 * not be async — the thread is back in the original namespace as soon as `fn` returns.
 */
export function withNetns<T>(netns: string, fn: () => T): T {
  const c = lc();
  const target = openNetns(netns);
  let self: number | undefined;
  try {
    self = openSync('/proc/thread-self/ns/net', 'r');
    if (c.setns(target, CLONE_NEWNET) !== 0) throw new NetlinkError(lastErrno(), { op: `setns ${netnsPath(netns)}` });
    let out: T | undefined;
    let failure: { err: unknown } | undefined;
    try {
      out = fn();
    } catch (err) {
      failure = { err };
    }
    if (c.setns(self, CLONE_NEWNET) !== 0) {
      // Staying in the wrong namespace would silently misdirect everything that follows.
      throw new NetlinkError(lastErrno(), { op: 'setns back to the original namespace (process state is now unsafe)' });
    }
    if (failure) throw failure.err;
    if (out && typeof (out as { then?: unknown }).then === 'function') throw new NetlinkInputError('withNetns(fn): fn must be synchronous');
    return out as T;
  } finally {
    closeSync(target);
    if (self !== undefined) closeSync(self);
  }
}

// ---- the socket ----------------------------------------------------------------------------

export interface SocketOptions {
  netns?: string;
  /** rtnetlink multicast groups to join (RTNLGRP_*). */
  groups?: number[];
  /** Receive buffer bytes (SO_RCVBUFFORCE as root, else SO_RCVBUF). Default 4 MiB. */
  rcvbuf?: number;
}

function intOpt(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}

/** A non-blocking NETLINK_ROUTE socket. */
export class NetlinkSocket {
  readonly fd: number;
  /** Our netlink port id (nl_pid) as assigned by the kernel. */
  readonly portId: number;
  /** Receive buffer; recv() fills it and returns the length. Reused, so decode before the next recv. */
  readonly rbuf = Buffer.alloc(64 * 1024);
  private closed = false;
  private evfd = -1;
  private polling: Promise<boolean> | undefined;
  private readonly pollfds = Buffer.alloc(16);

  private constructor(fd: number, portId: number) {
    this.fd = fd;
    this.portId = portId;
  }

  static open(opts: SocketOptions = {}): NetlinkSocket {
    const c = lc();
    const create = (): number => c.socket(AF.NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    const fd = opts.netns ? withNetns(opts.netns, create) : create();
    if (fd < 0) throw new NetlinkError(lastErrno(), { op: 'socket(AF_NETLINK)' });
    try {
      const sa = Buffer.alloc(12);
      sa.writeUInt16LE(AF.NETLINK, 0);
      if (c.bind(fd, sa, 12) !== 0) throw new NetlinkError(lastErrno(), { op: 'bind(AF_NETLINK)' });
      const len = Buffer.alloc(4);
      len.writeUInt32LE(12);
      if (c.getsockname(fd, sa, len) !== 0) throw new NetlinkError(lastErrno(), { op: 'getsockname' });
      const one = intOpt(1);
      // Best effort: older kernels lack some of these and everything still works without them.
      c.setsockopt(fd, SOL_NETLINK, NETLINK_OPT.EXT_ACK, one, 4); // error strings in NLMSG_ERROR
      c.setsockopt(fd, SOL_NETLINK, NETLINK_OPT.CAP_ACK, one, 4); // errors do not echo the request
      c.setsockopt(fd, SOL_NETLINK, NETLINK_OPT.GET_STRICT_CHK, one, 4); // kernel-side dump filters
      const rcv = intOpt(opts.rcvbuf ?? 4 * 1024 * 1024);
      if (c.setsockopt(fd, SOL_SOCKET, SO.RCVBUFFORCE, rcv, 4) !== 0) c.setsockopt(fd, SOL_SOCKET, SO.RCVBUF, rcv, 4);
      for (const g of opts.groups ?? []) {
        if (c.setsockopt(fd, SOL_NETLINK, NETLINK_OPT.ADD_MEMBERSHIP, intOpt(g), 4) !== 0) throw new NetlinkError(lastErrno(), { op: `join rtnetlink group ${g}` });
      }
      return new NetlinkSocket(fd, sa.readUInt32LE(4));
    } catch (err) {
      c.close(fd);
      throw err;
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends `len` bytes of `buf` as one datagram (any number of netlink messages). */
  send(buf: Buffer, len = buf.length): void {
    if (this.closed) throw new NetlinkError(9 /* EBADF */, { op: 'send on a closed netlink socket' });
    for (;;) {
      const n = lc().send(this.fd, buf, len, 0);
      if (n === len) return;
      if (n >= 0) throw new NetlinkError(5 /* EIO */, { op: `short send ${n}/${len}` });
      const e = lastErrno();
      if (e !== EINTR) throw new NetlinkError(e, { op: 'send' });
    }
  }

  /**
   * send() on a libuv pool thread. rtnetlink does the work inside sendmsg(), and some requests sleep
   * there (deleting a veth waits for RCU, ~10 ms): a long-lived process serving concurrent callers
   * (tabby-node's CNI server) must not block its event loop on them. `buf` must stay untouched until
   * the promise settles. errno is thread-local, so a failed async send is retried synchronously (the
   * kernel took nothing) to get the real error.
   */
  sendAsync(buf: Buffer, len = buf.length): Promise<void> {
    if (this.closed) return Promise.reject(new NetlinkError(9 /* EBADF */, { op: 'send on a closed netlink socket' }));
    return new Promise<void>((resolve, reject) => {
      lc().send.async(this.fd, buf, len, 0, (err, n) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else if (n === len) resolve();
        else {
          try {
            this.send(buf, len);
            resolve();
          } catch (e) {
            reject(e);
          }
        }
      });
    });
  }

  /** One datagram into rbuf: its length, or undefined when nothing is queued (EAGAIN). */
  recv(): number | undefined {
    if (this.closed) throw new NetlinkError(9 /* EBADF */, { op: 'recv on a closed netlink socket' });
    for (;;) {
      const n = lc().recv(this.fd, this.rbuf, this.rbuf.length, MSG_TRUNC);
      if (n > this.rbuf.length) throw new NetlinkError(90 /* EMSGSIZE */, { op: `netlink datagram of ${n} bytes truncated to ${this.rbuf.length}` });
      if (n >= 0) return n;
      const e = lastErrno();
      if (e === EAGAIN) return undefined;
      if (e !== EINTR) throw new NetlinkError(e, { op: 'recv' });
    }
  }

  /** Resolves true when the socket is readable, false when it was closed meanwhile. */
  waitReadable(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.polling) return this.polling;
    const c = lc();
    if (this.evfd < 0) {
      this.evfd = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (this.evfd < 0) return Promise.reject(new NetlinkError(lastErrno(), { op: 'eventfd' }));
    }
    const p = this.pollfds;
    p.fill(0);
    p.writeInt32LE(this.fd, 0);
    p.writeInt16LE(POLLIN, 4);
    p.writeInt32LE(this.evfd, 8);
    p.writeInt16LE(POLLIN, 12);
    this.polling = new Promise<boolean>((resolve, reject) => {
      c.poll.async(p, 2, -1, (err, res) => {
        this.polling = undefined;
        if (this.closed) {
          this.release();
          resolve(false);
        } else if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else if (res < 0) resolve(true); // EINTR: let the caller recv (EAGAIN) and wait again
        else resolve(true);
      });
    });
    return this.polling;
  }

  /** Closes the socket; a pending waitReadable() resolves false. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.polling) {
      lc().write(this.evfd, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]), 8);
      return; // the poll callback releases the fds
    }
    this.release();
  }

  private release(): void {
    const c = lc();
    c.close(this.fd);
    if (this.evfd >= 0) c.close(this.evfd);
    this.evfd = -1;
  }
}
