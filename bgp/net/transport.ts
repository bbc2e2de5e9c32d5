/**
 * TCP transport for BGP sessions: outgoing connections (with TCP-MD5, TTL, GTSM, source address
 * and port through the native edge when needed) and a listener that keeps one MD5 key per peer
 * address. A connect that gets no answer reports "no answer (MD5 key mismatch or filtered)"
 * when a password is set, because the kernel silently drops segments with a wrong key.
 */
import net from 'node:net';
import { TabbyError } from '../../lib/errors.js';
import { closeFd, rawConnectPoll, rawConnectStart, setMd5, setMinTtl, setTtl } from './sockopt.js';

export interface ConnectOptions {
  host: string;
  /** Default 179. */
  port?: number;
  localAddress?: string;
  localPort?: number;
  /** TCP-MD5 password (RFC 2385). Never logged. */
  password?: string;
  /** Outgoing TTL: 1 for directly connected eBGP, N for multihop, 255 with GTSM. */
  ttl?: number;
  /** GTSM (RFC 5082): hop count allowed; sets TTL 255 and IP_MINTTL 256 - hops. */
  ttlSecurityHops?: number;
  /** Connect timeout in ms. Default 5000. */
  timeoutMs?: number;
}

export class ConnectError extends TabbyError {
  /** Short status text for `tabbyctl node status`. */
  readonly reason: string;
  constructor(code: string, reason: string, hint: string, cause?: unknown) {
    super(code, reason, cause === undefined ? { hint } : { hint, cause });
    this.reason = reason;
  }
}

const ERRNO_NAMES: Record<number, string> = { 111: 'connection refused', 113: 'no route to host', 101: 'network unreachable', 110: 'timed out', 104: 'connection reset' };

/** Open a TCP connection to a BGP peer. */
export async function connectPeer(o: ConnectOptions): Promise<net.Socket> {
  const port = o.port ?? 179;
  const timeoutMs = o.timeoutMs ?? 5000;
  const ttl = o.ttlSecurityHops !== undefined ? 255 : o.ttl;
  const minTtl = o.ttlSecurityHops !== undefined ? 256 - o.ttlSecurityHops : undefined;
  const native = o.password !== undefined || ttl !== undefined || minTtl !== undefined;
  if (!native) return plainConnect(o, port, timeoutMs);
  const fd = rawConnectStart({
    host: o.host,
    port,
    ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
    ...(o.localPort !== undefined ? { localPort: o.localPort } : {}),
    ...(o.password !== undefined ? { password: o.password } : {}),
    ...(ttl !== undefined ? { ttl } : {}),
    ...(minTtl !== undefined ? { minTtl } : {}),
  });
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      let st: ReturnType<typeof rawConnectPoll>;
      try {
        st = rawConnectPoll(fd);
      } catch (e) {
        closeFd(fd);
        reject(e);
        return;
      }
      if (st === 'connected') {
        resolve(new net.Socket({ fd, readable: true, writable: true }));
        return;
      }
      if (st !== 'pending') {
        closeFd(fd);
        reject(new ConnectError('BGP_CONNECT_FAILED', ERRNO_NAMES[st] ?? `connect failed (errno ${st})`, 'is the peer up and listening on its BGP port?'));
        return;
      }
      if (Date.now() >= deadline) {
        closeFd(fd);
        reject(noAnswer(o.password !== undefined));
        return;
      }
      setTimeout(tick, 20).unref?.();
    };
    tick();
  });
}

function noAnswer(md5: boolean): ConnectError {
  return md5
    ? new ConnectError('BGP_NO_ANSWER', 'no answer (MD5 key mismatch or filtered)', 'check that both sides use the same BGP password and that TCP 179 is not filtered')
    : new ConnectError('BGP_NO_ANSWER', 'no answer (filtered)', 'check routing and firewalls towards the peer');
}

function plainConnect(o: ConnectOptions, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({
      host: o.host,
      port,
      ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
      ...(o.localPort !== undefined ? { localPort: o.localPort } : {}),
    });
    // libuv runs expired timers before it polls for I/O: after a stall longer than the timeout (a
    // starved CPU) the connect may have completed unseen. Decide in the check phase, after the poll.
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (s.connecting === false && !s.destroyed) return;
        s.destroy();
        reject(noAnswer(false));
      });
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ConnectError('BGP_CONNECT_FAILED', e.code === 'ECONNREFUSED' ? 'connection refused' : e.message, 'is the peer up and listening on its BGP port?', e));
    });
  });
}

/**
 * A BGP listener. Peers register their password (kept only in the kernel and in memory, never
 * logged) and GTSM settings; incoming connections are handed to `onConnection`.
 */
export class BgpListener {
  private server: net.Server | undefined;
  private readonly gtsm = new Map<string, number>();
  /** Peers whose MD5 key is on the listening socket: removing a key never installed is no syscall. */
  private readonly md5 = new Set<string>();
  constructor(private readonly onConnection: (socket: net.Socket) => void) {}

  /** `ipv6Only` with address `::` lets a second listener on `0.0.0.0` share the port (dual stack). */
  async listen(address: string, port: number, opts: { ipv6Only?: boolean } = {}): Promise<{ address: string; port: number }> {
    const server = net.createServer({ pauseOnConnect: false }, (s) => {
      const remote = s.remoteAddress ? normalize(s.remoteAddress) : undefined;
      const hops = remote !== undefined ? this.gtsm.get(remote) : undefined;
      const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (hops !== undefined && fd !== undefined && fd >= 0) {
        try {
          setMinTtl(fd, (remote ?? '').includes(':'), 256 - hops);
        } catch {
          s.destroy();
          return;
        }
      }
      this.onConnection(s);
    });
    this.server = server;
    this.md5.clear(); // a new listening socket holds no keys yet
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address, port, exclusive: true, ...(opts.ipv6Only ? { ipv6Only: true } : {}) }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const a = server.address() as net.AddressInfo;
    return { address: a.address, port: a.port };
  }

  private fd(): number {
    const fd = (this.server as unknown as { _handle?: { fd?: number } } | undefined)?._handle?.fd;
    if (fd === undefined || fd < 0) throw new TabbyError('BGP_LISTENER_NOT_READY', 'the BGP listener has no socket', { hint: 'call listen() first' });
    return fd;
  }

  /** Install or (with undefined) remove the TCP-MD5 key for connections from `peer`. */
  setPeerPassword(peer: string, password: string | undefined): void {
    if (password === undefined || password === '') {
      if (!this.md5.has(peer)) return;
      setMd5(this.fd(), peer, '');
      this.md5.delete(peer);
      return;
    }
    setMd5(this.fd(), peer, password);
    this.md5.add(peer);
  }

  /** GTSM for connections from `peer` (applied to each accepted socket). */
  setPeerTtlSecurity(peer: string, hops: number | undefined): void {
    if (hops === undefined) this.gtsm.delete(peer);
    else {
      this.gtsm.set(peer, hops);
      // GTSM peers expect our segments (the SYN-ACK included) with TTL 255.
      setTtl(this.fd(), peer.includes(':'), 255);
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** "::ffff:10.0.0.1" → "10.0.0.1" */
export function normalize(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}
