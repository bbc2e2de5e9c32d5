/**
 * The netlink API (iproute2 / vishvananda-netlink shaped). A `Netlink` handle owns one request socket,
 * optionally bound inside another network namespace, and serialises its requests. Verbs only differ in
 * NLM_F_* flags: add = CREATE|EXCL, replace = CREATE|REPLACE, del = no flags.
 *
 *   const nl = Netlink.open({ netns: 'cni-1234' });
 *   try { await nl.routeReplace({ dst: '10.0.0.0/26', type: RTN.BLACKHOLE, protocol: 80 }); } finally { nl.close(); }
 */
import { closeSync } from 'node:fs';
import { AF, NLMSG, NLM_F, RTM, RTNLGRP } from './constants.js';
import { DumpInterruptedError, LinkNotFoundError, NetlinkError, NetlinkInputError } from './errors.js';
import { decodeAddr, encodeAddr, encodeAddrDump, type Addr, type AddrFilter } from './addr.js';
import { decodeLink, encodeLinkAdd, encodeLinkDel, encodeLinkDump, encodeLinkGet, encodeLinkSet, type Link, type LinkChange, type LinkSpec, type VethPeer } from './link.js';
import { decodeNeigh, encodeNeigh, encodeNeighDump, type Neigh, type NeighFilter } from './neigh.js';
import { decodeRoute, encodeRoute, encodeRouteDump, routeMatches, type Route, type RouteFilter } from './route.js';
import { NetlinkSocket, openNetns } from './socket.js';
import { Writer, decodeError, parseMessages, type NlMsg } from './wire.js';

/** linkAdd input: a LinkSpec whose link/peer may name a namespace instead of passing an fd. */
export interface LinkAddSpec extends LinkSpec {
  /** Create the link in this netns (name or path); the handle opens and closes the fd. */
  netns?: string;
  peer?: VethPeer & { netns?: string };
}

export interface LinkSetChange extends LinkChange {
  /** Move the link to this netns (name or path). */
  netns?: string;
}

export interface NetlinkOptions {
  /** Network namespace name (/var/run/netns/<name>) or path (/proc/<pid>/ns/net). Default: ours. */
  netns?: string;
  /** Socket receive buffer; default 4 MiB (big batches and dumps). */
  rcvbuf?: number;
  /**
   * Send requests from a libuv pool thread instead of the main thread: a request the kernel handles
   * slowly (a veth delete waits for RCU) then does not stall the event loop. For long-lived servers
   * with concurrent callers; a short-lived process gains nothing from the thread hop.
   */
  asyncSend?: boolean;
}

export type EventGroup = 'link' | 'neigh' | 'ipv4-addr' | 'ipv6-addr' | 'ipv4-route' | 'ipv6-route';
const GROUPS: Record<EventGroup, number> = {
  link: RTNLGRP.LINK,
  neigh: RTNLGRP.NEIGH,
  'ipv4-addr': RTNLGRP.IPV4_IFADDR,
  'ipv6-addr': RTNLGRP.IPV6_IFADDR,
  'ipv4-route': RTNLGRP.IPV4_ROUTE,
  'ipv6-route': RTNLGRP.IPV6_ROUTE,
};

export type NetlinkEvent =
  | { kind: 'link'; action: 'new' | 'del'; link: Link }
  | { kind: 'addr'; action: 'new' | 'del'; addr: Addr }
  | { kind: 'route'; action: 'new' | 'del'; route: Route }
  | { kind: 'neigh'; action: 'new' | 'del'; neigh: Neigh }
  /** The kernel dropped events (receive buffer overflow, ENOBUFS): resync with a dump. */
  | { kind: 'overflow' };

/** Decodes one rtnetlink notification/dump message into an event (undefined for other types). */
export function decodeEvent(m: NlMsg): NetlinkEvent | undefined {
  switch (m.type) {
    case RTM.NEWLINK:
    case RTM.DELLINK:
      return { kind: 'link', action: m.type === RTM.NEWLINK ? 'new' : 'del', link: decodeLink(m.payload) };
    case RTM.NEWADDR:
    case RTM.DELADDR:
      return { kind: 'addr', action: m.type === RTM.NEWADDR ? 'new' : 'del', addr: decodeAddr(m.payload) };
    case RTM.NEWROUTE:
    case RTM.DELROUTE:
      return { kind: 'route', action: m.type === RTM.NEWROUTE ? 'new' : 'del', route: decodeRoute(m.payload) };
    case RTM.NEWNEIGH:
    case RTM.DELNEIGH:
      return { kind: 'neigh', action: m.type === RTM.NEWNEIGH ? 'new' : 'del', neigh: decodeNeigh(m.payload) };
    default:
      return undefined;
  }
}

/** How many times a dump flagged NLM_F_DUMP_INTR is restarted before DumpInterruptedError. */
const DUMP_RETRIES = 10;
/** Batch datagram size: big enough to amortise the syscall, well under the default sndbuf. */
const BATCH_BYTES = 60 * 1024;

type Encode = (w: Writer, seq: number) => void;

/**
 * What a Netlink handle needs from its socket: bytes in and out. NetlinkSocket implements it; tests
 * (and felix's reconciler tests) can pass an in-memory kernel via Netlink.fromTransport().
 */
export interface NetlinkTransport {
  /** Receive buffer that recv() fills. */
  readonly rbuf: Buffer;
  send(buf: Buffer, len: number): void;
  /** Optional: send off the main thread (see NetlinkSocket.sendAsync); used with `asyncSend`. */
  sendAsync?(buf: Buffer, len: number): Promise<void>;
  /** Length of the next datagram in rbuf, or undefined when none is queued. */
  recv(): number | undefined;
  /** Resolves true when recv() may have data, false when closed. */
  waitReadable(): Promise<boolean>;
  close(): void;
}

export class Netlink {
  readonly netns: string | undefined;
  private readonly sock: NetlinkTransport;
  private readonly w = new Writer(BATCH_BYTES + 4096);
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private tail: Promise<unknown> = Promise.resolve();

  private readonly asyncSend: boolean;

  private constructor(sock: NetlinkTransport, netns: string | undefined, asyncSend = false) {
    this.sock = sock;
    this.netns = netns;
    this.asyncSend = asyncSend && typeof sock.sendAsync === 'function';
  }

  /** Sends the request in `w` (see NetlinkOptions.asyncSend). */
  private transmit(buf: Buffer, len: number): Promise<void> | void {
    if (this.asyncSend) return this.sock.sendAsync!(buf, len);
    this.sock.send(buf, len);
  }

  /** Opens a request socket (inside `netns` when given). Synchronous; close() when done. */
  static open(opts: NetlinkOptions = {}): Netlink {
    return new Netlink(NetlinkSocket.open({ netns: opts.netns, rcvbuf: opts.rcvbuf }), opts.netns, opts.asyncSend);
  }

  /** A handle over any transport (an in-memory fake kernel in tests). subscribe() still opens a real socket. */
  static fromTransport(transport: NetlinkTransport, netns?: string): Netlink {
    return new Netlink(transport, netns);
  }

  close(): void {
    this.sock.close();
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  /** Runs `fn` after every earlier request on this handle finished (one request in flight). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Receives until `onMsg` returns true; waits for readiness (no busy loop) when nothing is queued. */
  private async receive(onMsg: (m: NlMsg) => boolean): Promise<void> {
    for (;;) {
      const n = this.sock.recv();
      if (n === undefined) {
        if (!(await this.sock.waitReadable())) throw new NetlinkError(9 /* EBADF */, { op: 'netlink handle closed while waiting for a reply' });
        continue;
      }
      for (const m of parseMessages(this.sock.rbuf, n)) if (onMsg(m)) return;
    }
  }

  /** One request that expects an ACK (NLM_F_ACK set by the encoder). */
  private request(op: string, encode: Encode): Promise<void> {
    return this.serial(async () => {
      const seq = this.nextSeq();
      encode(this.w.reset(), seq);
      await this.transmit(this.w.buf, this.w.off);
      let failure: NetlinkError | undefined;
      await this.receive((m) => {
        if (m.seq !== seq || m.type !== NLMSG.ERROR) return false;
        const e = decodeError(m);
        if (e.errno !== 0) failure = new NetlinkError(e.errno, { op, extAck: e.extAckMsg, extAckOffset: e.extAckOffset });
        return true;
      });
      if (failure) throw failure;
    });
  }

  /** A GET that answers with one object (or an error). */
  private getOne<T>(op: string, encode: Encode, decode: (m: NlMsg) => T): Promise<T> {
    return this.serial(async () => {
      const seq = this.nextSeq();
      encode(this.w.reset(), seq);
      await this.transmit(this.w.buf, this.w.off);
      let out: T | undefined;
      let failure: NetlinkError | undefined;
      await this.receive((m) => {
        if (m.seq !== seq) return false;
        if (m.type === NLMSG.ERROR) {
          const e = decodeError(m);
          if (e.errno !== 0) failure = new NetlinkError(e.errno, { op, extAck: e.extAckMsg });
          return true;
        }
        out = decode(m);
        return true;
      });
      if (failure) throw failure;
      if (out === undefined) throw new NetlinkError(61 /* ENODATA */, { op: `${op}: empty reply` });
      return out;
    });
  }

  /** A dump, restarted when the kernel flags it NLM_F_DUMP_INTR. */
  private dump<T>(op: string, encode: Encode, decode: (m: NlMsg) => T | undefined): Promise<T[]> {
    return this.serial(async () => {
      for (let attempt = 0; attempt < DUMP_RETRIES; attempt++) {
        const seq = this.nextSeq();
        encode(this.w.reset(), seq);
        await this.transmit(this.w.buf, this.w.off);
        const out: T[] = [];
        let interrupted = false;
        let failure: NetlinkError | undefined;
        await this.receive((m) => {
          if (m.seq !== seq) return false;
          if (m.flags & NLM_F.DUMP_INTR) interrupted = true;
          if (m.type === NLMSG.DONE) {
            const err = m.payload.length >= 4 ? -m.payload.readInt32LE(0) : 0;
            if (err > 0) failure = new NetlinkError(err, { op });
            return true;
          }
          if (m.type === NLMSG.ERROR) {
            const e = decodeError(m);
            failure = new NetlinkError(e.errno || 5, { op, extAck: e.extAckMsg });
            return true;
          }
          const v = decode(m);
          if (v !== undefined) out.push(v);
          return false;
        });
        if (failure) throw failure;
        if (!interrupted) return out;
      }
      throw new DumpInterruptedError(op);
    });
  }

  /** Opens netns fds for a call and closes them afterwards. */
  private async withNetnsFds<T>(names: Array<string | undefined>, fn: (fds: Array<number | undefined>) => Promise<T>): Promise<T> {
    const fds: Array<number | undefined> = [];
    try {
      for (const n of names) fds.push(n === undefined ? undefined : openNetns(n));
      return await fn(fds);
    } finally {
      for (const fd of fds) if (fd !== undefined) closeSync(fd);
    }
  }

  // ---- links -------------------------------------------------------------------------------

  /** `ip link add …`: veth (peer possibly in another netns), bridge, vxlan, ipip, … */
  linkAdd(spec: LinkAddSpec): Promise<void> {
    return this.withNetnsFds([spec.netns, spec.peer?.netns], ([fd, peerFd]) => {
      const s: LinkSpec = { ...spec };
      if (fd !== undefined) s.netnsFd = fd;
      if (spec.peer) s.peer = { ...spec.peer, ...(peerFd !== undefined ? { netnsFd: peerFd } : {}) };
      delete (s as LinkAddSpec).netns;
      if (s.peer) delete (s.peer as { netns?: string }).netns;
      return this.request(`RTM_NEWLINK ${spec.kind} ${spec.name}`, (w, seq) => encodeLinkAdd(w, seq, s));
    });
  }

  /** `ip link del dev …` (by index or name). */
  async linkDel(link: number | string): Promise<void> {
    const index = await this.indexOf(link);
    return this.request(`RTM_DELLINK ${link}`, (w, seq) => encodeLinkDel(w, seq, index));
  }

  /** `ip link set dev … up|down|mtu|name|master|address|netns`. */
  async linkSet(link: number | string, change: LinkSetChange): Promise<void> {
    const index = await this.indexOf(link);
    return this.withNetnsFds([change.netns], ([fd]) => {
      const c: LinkChange = { ...change };
      delete (c as LinkSetChange).netns;
      if (fd !== undefined) c.netnsFd = fd;
      return this.request(`RTM_NEWLINK set ${link}`, (w, seq) => encodeLinkSet(w, seq, index, c));
    });
  }

  /** Throws LinkNotFoundError (code ENODEV) when there is no such link. */
  async linkByName(name: string): Promise<Link> {
    return this.linkGet(name);
  }

  async linkByIndex(index: number): Promise<Link> {
    return this.linkGet(index);
  }

  private async linkGet(link: number | string): Promise<Link> {
    try {
      return await this.getOne(`RTM_GETLINK ${link}`, (w, seq) => encodeLinkGet(w, seq, link), (m) => decodeLink(m.payload));
    } catch (err) {
      if (err instanceof NetlinkError && (err.code === 'ENODEV' || err.code === 'ENOENT')) throw new LinkNotFoundError(link);
      throw err;
    }
  }

  linkList(): Promise<Link[]> {
    return this.dump('RTM_GETLINK dump', (w, seq) => encodeLinkDump(w, seq), (m) => (m.type === RTM.NEWLINK ? decodeLink(m.payload) : undefined));
  }

  private async indexOf(link: number | string): Promise<number> {
    return typeof link === 'number' ? link : (await this.linkByName(link)).index;
  }

  // ---- addresses ---------------------------------------------------------------------------

  addrAdd(a: Addr): Promise<void> {
    return this.request(`RTM_NEWADDR ${a.address}`, (w, seq) => encodeAddr(w, seq, RTM.NEWADDR, NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, a));
  }
  addrReplace(a: Addr): Promise<void> {
    return this.request(`RTM_NEWADDR ${a.address}`, (w, seq) => encodeAddr(w, seq, RTM.NEWADDR, NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE, a));
  }
  addrDel(a: Addr): Promise<void> {
    return this.request(`RTM_DELADDR ${a.address}`, (w, seq) => encodeAddr(w, seq, RTM.DELADDR, NLM_F.ACK, a));
  }
  addrList(f: AddrFilter = {}): Promise<Addr[]> {
    return this.dump('RTM_GETADDR dump', (w, seq) => encodeAddrDump(w, seq, f.family ?? AF.UNSPEC), (m) => {
      if (m.type !== RTM.NEWADDR) return undefined;
      const a = decodeAddr(m.payload);
      return f.ifindex === undefined || a.ifindex === f.ifindex ? a : undefined;
    });
  }

  // ---- routes ------------------------------------------------------------------------------

  /** `ip route add`: fails with EEXIST when the route exists. */
  routeAdd(r: Route): Promise<void> {
    return this.request(`RTM_NEWROUTE ${r.dst ?? 'default'}`, (w, seq) => encodeRoute(w, seq, RTM.NEWROUTE, NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, r));
  }
  /** `ip route replace`: create or overwrite (felix's verb). */
  routeReplace(r: Route): Promise<void> {
    return this.request(`RTM_NEWROUTE ${r.dst ?? 'default'}`, (w, seq) => encodeRoute(w, seq, RTM.NEWROUTE, NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE, r));
  }
  /** `ip route del`: unset protocol/type/scope match anything; ESRCH when there is no such route. */
  routeDel(r: Route): Promise<void> {
    return this.request(`RTM_DELROUTE ${r.dst ?? 'default'}`, (w, seq) => encodeRoute(w, seq, RTM.DELROUTE, NLM_F.ACK, r));
  }
  /**
   * Routes matching `filter` (table unset = main, 0 = all tables; other unset fields match all).
   * Cloned/cache entries are skipped. Interrupted dumps are restarted.
   */
  routeList(filter: RouteFilter = {}): Promise<Route[]> {
    return this.dump('RTM_GETROUTE dump', (w, seq) => encodeRouteDump(w, seq, filter), (m) => {
      if (m.type !== RTM.NEWROUTE) return undefined;
      const r = decodeRoute(m.payload);
      return routeMatches(r, filter) ? r : undefined;
    });
  }

  // ---- neighbours --------------------------------------------------------------------------

  /** `ip neigh replace` / `bridge fdb replace … self` (family 7, flags NTF.SELF). */
  neighSet(n: Neigh): Promise<void> {
    return this.request(`RTM_NEWNEIGH ${n.ip ?? n.mac}`, (w, seq) => encodeNeigh(w, seq, RTM.NEWNEIGH, NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE, n));
  }
  neighAdd(n: Neigh): Promise<void> {
    return this.request(`RTM_NEWNEIGH ${n.ip ?? n.mac}`, (w, seq) => encodeNeigh(w, seq, RTM.NEWNEIGH, NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, n));
  }
  neighDel(n: Neigh): Promise<void> {
    return this.request(`RTM_DELNEIGH ${n.ip ?? n.mac}`, (w, seq) => encodeNeigh(w, seq, RTM.DELNEIGH, NLM_F.ACK, n));
  }
  neighList(f: NeighFilter = {}): Promise<Neigh[]> {
    return this.dump('RTM_GETNEIGH dump', (w, seq) => encodeNeighDump(w, seq, f.family ?? AF.UNSPEC), (m) => {
      if (m.type !== RTM.NEWNEIGH) return undefined;
      const n = decodeNeigh(m.payload);
      return f.ifindex === undefined || n.ifindex === f.ifindex ? n : undefined;
    });
  }

  // ---- batch -------------------------------------------------------------------------------

  /** Collects requests and sends them pipelined (many per datagram); see Batch. */
  batch(): Batch {
    return new Batch((ops) => this.serial(() => this.runBatch(ops)));
  }

  /**
   * Like batch(), but each request is encoded when it is added: while the batch runs only its
   * bytes exist, no object per request (see EncodedBatch). For batches of thousands of routes.
   */
  encodedBatch(): EncodedBatch {
    return new EncodedBatch((b) => this.serial(() => this.runEncoded(b)));
  }

  /** runBatch() for requests already encoded in b.w at b.starts (seq and ACK are set here). */
  private async runEncoded(b: EncodedBatch): Promise<Array<Error | undefined>> {
    const n = b.starts.length;
    const results: Array<Error | undefined> = new Array<Error | undefined>(n).fill(undefined);
    for (const [i, err] of b.inputErrors) results[i] = err;
    const buf = b.w.buf;
    const end = b.w.off;
    // Messages are contiguous in request order; a request that failed to encode has start -1.
    const next = (i: number): number => {
      for (let j = i + 1; j < n; j++) if ((b.starts[j] as number) >= 0) return j;
      return n;
    };
    const endOf = (i: number): number => (i < n ? (b.starts[i] as number) : end);
    let i = next(-1);
    const inDatagram: number[] = [];
    while (i < n) {
      const dgStart = b.starts[i] as number;
      inDatagram.length = 0;
      const firstSeq = this.seq + 1;
      let lastStart = dgStart;
      do {
        lastStart = b.starts[i] as number;
        buf.writeUInt32LE(this.nextSeq(), lastStart + 8);
        buf.writeUInt16LE(buf.readUInt16LE(lastStart + 6) & ~NLM_F.ACK, lastStart + 6);
        inDatagram.push(i);
        i = next(i);
      } while (i < n && endOf(i) - dgStart < BATCH_BYTES);
      // Only the last message asks for an ACK: the kernel answers errors anyway, in order.
      buf.writeUInt16LE(buf.readUInt16LE(lastStart + 6) | NLM_F.ACK, lastStart + 6);
      const lastSeq = this.seq;
      const dgEnd = endOf(i);
      await this.transmit(buf.subarray(dgStart, dgEnd), dgEnd - dgStart);
      await this.receive((m) => {
        if (m.type !== NLMSG.ERROR) return false;
        const k = (m.seq - firstSeq) >>> 0;
        if (k >= inDatagram.length) return false;
        const e = decodeError(m);
        const idx = inDatagram[k] as number;
        if (e.errno !== 0) results[idx] = new NetlinkError(e.errno, { op: b.opName(idx), extAck: e.extAckMsg });
        return m.seq === lastSeq;
      });
    }
    return results;
  }

  /**
   * Sends ops in ~60 KiB datagrams. Only the last message of a datagram asks for an ACK: the kernel
   * handles a datagram's messages in order and always answers errors, so that ACK means "all done"
   * and every earlier seq without an error succeeded. Few replies → the receive buffer cannot overflow.
   */
  private async runBatch(ops: BatchOp[]): Promise<Array<NetlinkError | undefined>> {
    const results: Array<NetlinkError | undefined> = new Array(ops.length).fill(undefined);
    const w = this.w;
    let i = 0;
    while (i < ops.length) {
      w.reset();
      const first = i;
      const firstSeq = this.seq + 1;
      let lastStart = 0;
      while (i < ops.length && w.off < BATCH_BYTES) {
        lastStart = w.off;
        (ops[i] as BatchOp).encode(w, this.nextSeq());
        w.buf.writeUInt16LE(w.buf.readUInt16LE(lastStart + 6) & ~NLM_F.ACK, lastStart + 6);
        i++;
      }
      w.buf.writeUInt16LE(w.buf.readUInt16LE(lastStart + 6) | NLM_F.ACK, lastStart + 6);
      const lastSeq = this.seq;
      await this.transmit(w.buf, w.off);
      await this.receive((m) => {
        if (m.type !== NLMSG.ERROR) return false;
        const k = (m.seq - firstSeq) >>> 0;
        if (k >= i - first) return false;
        const e = decodeError(m);
        const idx = first + k;
        if (e.errno !== 0) results[idx] = new NetlinkError(e.errno, { op: (ops[idx] as BatchOp).op, extAck: e.extAckMsg });
        return m.seq === lastSeq;
      });
    }
    return results;
  }

  // ---- events ------------------------------------------------------------------------------

  /**
   * Subscribes to rtnetlink multicast groups in this handle's netns (its own socket). The listener
   * gets decoded objects; `{ kind: 'overflow' }` means events were lost and the caller must resync.
   */
  subscribe(groups: EventGroup[], listener: (ev: NetlinkEvent) => void, onError?: (err: unknown) => void): Subscription {
    const sock = NetlinkSocket.open({ netns: this.netns, groups: groups.map((g) => GROUPS[g]) });
    return new Subscription(sock, listener, onError);
  }
}

interface BatchOp {
  op: string;
  encode: Encode;
}

/** Per-request outcome of a batch: index-aligned with the order the requests were added. */
export interface BatchResult {
  errors: Array<NetlinkError | undefined>;
  ok: number;
  failed: number;
}

/**
 * Pipelined requests. Add with the same verbs as the handle, then `await batch.run()`. Requests are
 * applied in order; a failing request does not stop the ones after it.
 */
export class Batch {
  private ops: BatchOp[] = [];
  constructor(private readonly runner: (ops: BatchOp[]) => Promise<Array<NetlinkError | undefined>>) {}
  get size(): number {
    return this.ops.length;
  }
  private add(op: string, encode: Encode): this {
    this.ops.push({ op, encode });
    return this;
  }
  routeAdd(r: Route): this {
    return this.add(`RTM_NEWROUTE ${r.dst ?? 'default'}`, (w, seq) => encodeRoute(w, seq, RTM.NEWROUTE, NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, r));
  }
  routeReplace(r: Route): this {
    return this.add(`RTM_NEWROUTE ${r.dst ?? 'default'}`, (w, seq) => encodeRoute(w, seq, RTM.NEWROUTE, NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE, r));
  }
  routeDel(r: Route): this {
    return this.add(`RTM_DELROUTE ${r.dst ?? 'default'}`, (w, seq) => encodeRoute(w, seq, RTM.DELROUTE, NLM_F.ACK, r));
  }
  addrAdd(a: Addr): this {
    return this.add(`RTM_NEWADDR ${a.address}`, (w, seq) => encodeAddr(w, seq, RTM.NEWADDR, NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, a));
  }
  addrReplace(a: Addr): this {
    return this.add(`RTM_NEWADDR ${a.address}`, (w, seq) => encodeAddr(w, seq, RTM.NEWADDR, NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE, a));
  }
  addrDel(a: Addr): this {
    return this.add(`RTM_DELADDR ${a.address}`, (w, seq) => encodeAddr(w, seq, RTM.DELADDR, NLM_F.ACK, a));
  }
  neighSet(n: Neigh): this {
    return this.add(`RTM_NEWNEIGH ${n.ip ?? n.mac}`, (w, seq) => encodeNeigh(w, seq, RTM.NEWNEIGH, NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE, n));
  }
  neighDel(n: Neigh): this {
    return this.add(`RTM_DELNEIGH ${n.ip ?? n.mac}`, (w, seq) => encodeNeigh(w, seq, RTM.DELNEIGH, NLM_F.ACK, n));
  }
  /** By index only (no name lookups inside a batch). */
  linkSet(index: number, c: LinkChange): this {
    return this.add(`RTM_NEWLINK set ${index}`, (w, seq) => encodeLinkSet(w, seq, index, c));
  }
  linkDel(index: number): this {
    return this.add(`RTM_DELLINK ${index}`, (w, seq) => encodeLinkDel(w, seq, index));
  }
  async run(): Promise<BatchResult> {
    const ops = this.ops;
    this.ops = [];
    const errors = await this.runner(ops);
    const failed = errors.filter((e) => e !== undefined).length;
    return { errors, ok: ops.length - failed, failed };
  }
}

/**
 * Pipelined route requests encoded as they are added, into one buffer. Batch keeps a closure, an
 * op text and the caller's object per request until it has run, and with thousands of requests in
 * flight those outlive young-generation collections and pile up in the old heap; here a request
 * costs its bytes (~70 B for a route) and one offset. Results are index-aligned like Batch's; a
 * request that cannot be encoded (bad input) fails alone with its NetlinkInputError.
 */
export class EncodedBatch {
  readonly w = new Writer(BATCH_BYTES + 4096);
  /** Offset of each request's message in w (-1: not encoded, see inputErrors). */
  readonly starts: number[] = [];
  readonly inputErrors = new Map<number, Error>();
  /** RTM type per request, for error texts. */
  private readonly types: number[] = [];
  constructor(private readonly runner: (b: EncodedBatch) => Promise<Array<Error | undefined>>) {}
  get size(): number {
    return this.starts.length;
  }
  private route(type: number, flags: number, r: Route): this {
    const start = this.w.off;
    this.types.push(type);
    try {
      encodeRoute(this.w, 0, type, flags, r);
      this.starts.push(start);
    } catch (err) {
      this.w.off = start;
      this.inputErrors.set(this.starts.length, err instanceof Error ? err : new NetlinkInputError(String(err)));
      this.starts.push(-1);
    }
    return this;
  }
  routeReplace(r: Route): this {
    return this.route(RTM.NEWROUTE, NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE, r);
  }
  routeDel(r: Route): this {
    return this.route(RTM.DELROUTE, NLM_F.ACK, r);
  }
  opName(i: number): string {
    return this.types[i] === RTM.DELROUTE ? 'RTM_DELROUTE' : 'RTM_NEWROUTE';
  }
  /** Index-aligned outcomes: undefined = done, a NetlinkError from the kernel, or the input error. */
  run(): Promise<{ errors: Array<Error | undefined>; ok: number; failed: number }> {
    return this.runner(this).then((errors) => {
      const failed = errors.filter((e) => e !== undefined).length;
      return { errors, ok: errors.length - failed, failed };
    });
  }
}

/** A live multicast subscription; close() stops it (no CPU is used while idle). */
export class Subscription {
  private stopped = false;
  readonly done: Promise<void>;
  constructor(
    private readonly sock: NetlinkSocket,
    private readonly listener: (ev: NetlinkEvent) => void,
    private readonly onError?: (err: unknown) => void,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let n: number | undefined;
      try {
        n = this.sock.recv();
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof NetlinkError && err.code === 'ENOBUFS') {
          this.listener({ kind: 'overflow' });
          continue;
        }
        this.report(err);
        return;
      }
      if (n === undefined) {
        if (!(await this.sock.waitReadable())) return;
        continue;
      }
      try {
        for (const m of parseMessages(this.sock.rbuf, n)) {
          const ev = decodeEvent(m);
          if (ev) this.listener(ev);
        }
      } catch (err) {
        this.report(err);
      }
    }
  }

  private report(err: unknown): void {
    if (this.onError) this.onError(err);
    else queueMicrotask(() => {
      throw err;
    });
  }

  close(): void {
    this.stopped = true;
    this.sock.close();
  }
}


/**
 * The request surface of a Netlink handle, for code that wants to accept a fake (felix's reconciler
 * tests can implement this with an in-memory kernel and failure injection).
 */
export type NetlinkApi = Pick<
  Netlink,
  | 'linkAdd'
  | 'linkDel'
  | 'linkSet'
  | 'linkByName'
  | 'linkByIndex'
  | 'linkList'
  | 'addrAdd'
  | 'addrReplace'
  | 'addrDel'
  | 'addrList'
  | 'routeAdd'
  | 'routeReplace'
  | 'routeDel'
  | 'routeList'
  | 'neighSet'
  | 'neighAdd'
  | 'neighDel'
  | 'neighList'
  | 'batch'
  | 'close'
>;
